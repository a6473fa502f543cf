// floor-webhook: the least a mutating admission webhook can do, as a control for
// sts-admission-bench. It answers every AdmissionReview for a StatefulSet with the patch
// sts-webhook gives when the Service is cached (set spec.serviceName to the StatefulSet's
// name) and makes no API call, so the API server's histogram of calls to it is the floor
// that any webhook reaches on the machine: Go's net/http and crypto/tls, the language the
// API server itself is written in, instead of sts-webhook's Rust stack.
//
// It takes the flags the test harness gives sts-webhook (--listen, --tls-cert, --tls-key)
// and ignores the others; it serves /mutate, /readyz and an empty /metrics. Standard
// library only.
//
//	(cd tests/go/floor-webhook && go build -o ../../../target/floor-webhook .)
//	target/debug/sts-cluster run -- target/debug/sts-admission-bench --webhook-bin target/floor-webhook
package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
)

type review struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Request    struct {
		UID    string `json:"uid"`
		Object struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Spec struct {
				ServiceName string `json:"serviceName"`
			} `json:"spec"`
		} `json:"object"`
	} `json:"request"`
}

func mutate(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var in review
	if err := json.Unmarshal(body, &in); err != nil {
		http.Error(w, "not an AdmissionReview: "+err.Error(), http.StatusBadRequest)
		return
	}
	resp := map[string]any{"uid": in.Request.UID, "allowed": true}
	if obj := in.Request.Object; obj.Spec.ServiceName == "" && obj.Metadata.Name != "" {
		name, _ := json.Marshal(obj.Metadata.Name)
		patch := fmt.Sprintf(`[{"op":"add","path":"/spec/serviceName","value":%s}]`, name)
		resp["patchType"] = "JSONPatch"
		resp["patch"] = base64.StdEncoding.EncodeToString([]byte(patch))
	}
	out, _ := json.Marshal(map[string]any{
		"apiVersion": in.APIVersion, "kind": in.Kind, "response": resp,
	})
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

func main() {
	flags := map[string]string{}
	for _, a := range os.Args[1:] {
		if k, v, ok := strings.Cut(strings.TrimPrefix(a, "--"), "="); ok {
			flags[k] = v
		}
	}
	for _, k := range []string{"listen", "tls-cert", "tls-key"} {
		if flags[k] == "" {
			log.Fatalf("floor-webhook: --%s=… is required", k)
		}
	}
	if !strings.HasPrefix(flags["listen"], "127.0.0.1:") {
		log.Fatalf("floor-webhook: --listen must be on 127.0.0.1, got %q", flags["listen"])
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/mutate", mutate)
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {})
	log.Printf("floor-webhook serving on %s", flags["listen"])
	log.Fatal(http.ListenAndServeTLS(flags["listen"], flags["tls-cert"], flags["tls-key"], mux))
}
