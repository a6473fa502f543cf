//! e2e: the plugin works with every kubeconfig kubectl accepts, and refuses what kubectl
//! refuses. Each row is a real kubeconfig against the real kube-apiserver; the expected outcome
//! of each row is what the real kubectl did with it (and a row whose kubectl outcome is not the
//! one the row was built for is a broken row, reported as such).
//!
//! - `client_certificates_of_every_shape` issues client certificates with the cluster's client
//!   CA (`STS_E2E_CLIENT_CA_CERT`/`_KEY`, set by `sts-cluster`): X.509 v1 and v3, RSA (PKCS#1),
//!   EC P-256 (SEC1 and PKCS#8) and Ed25519 keys, as data and as files, from an exec plugin.
//! - `server_trust_and_credentials` authenticates with a ServiceAccount token and varies how
//!   the server is trusted: a CA bundle, the server's own leaf certificate as the CA,
//!   `tls-server-name`, `insecure-skip-tls-verify`, an exec plugin, and refusals.
//!
//! See docs/e2e-scenarios.md.

mod common;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail, ensure};
use base64::Engine as _;
use common::*;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::PostParams;
use kube::config::Kubeconfig;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use openssl::x509::extension::{BasicConstraints, ExtendedKeyUsage, KeyUsage};
use openssl::x509::{X509, X509NameBuilder};
use serde_json::{Value, json};

/// The StatefulSet every row must see.
const STS: &str = "tls";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    Works,
    Refused,
}

/// One kubeconfig of the matrix.
struct Row {
    what: &'static str,
    expect: Expect,
    kubeconfig: Value,
    /// For a refused row: what the plugin's error must say (it names the cause).
    plugin_says: Option<&'static str>,
}

/// What one client made of one kubeconfig.
#[derive(Debug)]
struct Seen {
    /// StatefulSet names listed, or the error's first line.
    result: std::result::Result<BTreeSet<String>, String>,
}

impl Seen {
    fn works(&self) -> bool {
        self.result.is_ok()
    }
    fn summary(&self) -> String {
        match &self.result {
            Ok(names) => format!("ok {names:?}"),
            Err(e) => format!("refused: {e}"),
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(no output)")
        .chars()
        .take(300)
        .collect()
}

/// `kubectl get statefulsets -o name` with only this kubeconfig.
fn kubectl_sees(kubeconfig: &Path, ns: &str) -> Result<Seen> {
    let out = Command::new("kubectl")
        .args(["get", "statefulsets", "-o", "name", "--request-timeout=20s"])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["-n", ns])
        .env_remove("KUBECONFIG")
        .output()
        .context("running kubectl (is it on PATH?)")?;
    let result = if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().strip_prefix("statefulset.apps/"))
            .map(str::to_owned)
            .collect())
    } else {
        Err(first_line(&String::from_utf8_lossy(&out.stderr)))
    };
    Ok(Seen { result })
}

/// `kubectl-sts list -o json` with only this kubeconfig.
fn plugin_sees(plugin: &Path, kubeconfig: &Path, ns: &str) -> Result<Seen> {
    let out = Command::new(plugin)
        .args(["list", "-o", "json"])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["-n", ns])
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        .output()
        .context("running kubectl-sts")?;
    let result = if out.status.success() {
        let doc: Value = serde_json::from_slice(&out.stdout)
            .with_context(|| format!("kubectl-sts list -o json printed non-JSON: {out:?}"))?;
        Ok(doc["items"]
            .as_array()
            .context("list -o json has no items[]")?
            .iter()
            .filter_map(|i| i["name"].as_str())
            .map(str::to_owned)
            .collect())
    } else {
        Err(first_line(&String::from_utf8_lossy(&out.stderr)))
    };
    Ok(Seen { result })
}

/// Runs every row with kubectl and the plugin; fails listing every row where the plugin did not
/// do what kubectl did, or kubectl did not do what the row was built for.
fn run_matrix(ns: &TestNs, dir: &Path, rows: &[Row]) -> Result<()> {
    let mut report = String::new();
    let mut wrong = 0;
    for (i, row) in rows.iter().enumerate() {
        let path = dir.join(format!("row-{i}.kubeconfig"));
        std::fs::write(&path, serde_yaml::to_string(&row.kubeconfig)?)?;
        let kubectl = kubectl_sees(&path, &ns.name)?;
        let plugin = plugin_sees(&ns.env.kubectl_sts, &path, &ns.name)?;
        let plugin_error = plugin.result.as_ref().err();
        let verdict = if kubectl.works() != (row.expect == Expect::Works) {
            "ROW BROKEN (kubectl did not do what the row was built for)"
        } else if kubectl.result.as_ref().ok() != plugin.result.as_ref().ok()
            || kubectl.works() != plugin.works()
        {
            "DIFFERS FROM KUBECTL"
        } else if let (Some(says), Some(error)) = (row.plugin_says, plugin_error)
            && !error.contains(says)
        {
            "REFUSED WITHOUT NAMING THE CAUSE"
        } else {
            "same as kubectl"
        };
        if verdict != "same as kubectl" {
            wrong += 1;
        }
        writeln!(
            report,
            "{:<62} {verdict}\n    kubectl:     {}\n    kubectl-sts: {}",
            row.what,
            kubectl.summary(),
            plugin.summary()
        )?;
    }
    eprintln!("{report}");
    ensure!(
        wrong == 0,
        "{wrong} of {} kubeconfigs went wrong:\n{report}",
        rows.len()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Certificates and keys, with OpenSSL (which can write X.509 v1, unlike rcgen).

/// The shapes of private key kubeconfigs carry.
#[derive(Clone, Copy, Debug)]
enum KeyShape {
    /// `BEGIN RSA PRIVATE KEY` (kubeadm, microk8s).
    RsaPkcs1,
    /// `BEGIN EC PRIVATE KEY`.
    EcSec1,
    /// `BEGIN PRIVATE KEY` holding an EC key.
    EcPkcs8,
    /// `BEGIN PRIVATE KEY` holding an Ed25519 key.
    Ed25519,
}

impl KeyShape {
    fn pem_header(self) -> &'static str {
        match self {
            KeyShape::RsaPkcs1 => "-----BEGIN RSA PRIVATE KEY-----",
            KeyShape::EcSec1 => "-----BEGIN EC PRIVATE KEY-----",
            KeyShape::EcPkcs8 | KeyShape::Ed25519 => "-----BEGIN PRIVATE KEY-----",
        }
    }
}

/// A key of `shape` and its PEM, checked to really be that shape.
fn key_of(shape: KeyShape) -> Result<(PKey<Private>, String)> {
    let p256 = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let (key, pem) = match shape {
        KeyShape::RsaPkcs1 => {
            let rsa = Rsa::generate(2048)?;
            let pem = rsa.private_key_to_pem()?;
            (PKey::from_rsa(rsa)?, pem)
        }
        KeyShape::EcSec1 => {
            let ec = EcKey::generate(&p256)?;
            let pem = ec.private_key_to_pem()?;
            (PKey::from_ec_key(ec)?, pem)
        }
        KeyShape::EcPkcs8 => {
            let key = PKey::from_ec_key(EcKey::generate(&p256)?)?;
            let pem = key.private_key_to_pem_pkcs8()?;
            (key, pem)
        }
        KeyShape::Ed25519 => {
            let key = PKey::generate_ed25519()?;
            let pem = key.private_key_to_pem_pkcs8()?;
            (key, pem)
        }
    };
    let pem = String::from_utf8(pem)?;
    ensure!(
        pem.starts_with(shape.pem_header()),
        "{shape:?} key PEM starts with {:?}",
        pem.lines().next()
    );
    Ok((key, pem))
}

/// A certificate authority: certificate and key.
struct Ca {
    cert: X509,
    key: PKey<Private>,
}

impl Ca {
    /// The cluster's client CA, from the files `sts-cluster` names.
    fn cluster() -> Result<Self> {
        let path = |var: &str| -> Result<PathBuf> {
            match std::env::var_os(var) {
                Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
                _ => bail!(
                    "{var} is not set: this test issues client certificates with the cluster's client CA \
                     (kube-apiserver --client-ca-file and its key). `sts-cluster run` sets it; on your own \
                     cluster point STS_E2E_CLIENT_CA_CERT/_KEY at that CA (kind: /etc/kubernetes/pki/ca.crt, ca.key)"
                ),
            }
        };
        let cert = X509::from_pem(&std::fs::read(path("STS_E2E_CLIENT_CA_CERT")?)?)?;
        let key = PKey::private_key_from_pem(&std::fs::read(path("STS_E2E_CLIENT_CA_KEY")?)?)?;
        Ok(Self { cert, key })
    }

    /// A new self-signed CA that the cluster knows nothing about.
    fn unrelated(cn: &str) -> Result<Self> {
        let p256 = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
        let key = PKey::from_ec_key(EcKey::generate(&p256)?)?;
        let name = name(cn, None)?;
        let serial = serial()?;
        let (not_before, not_after) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(2)?);
        let mut b = X509::builder()?;
        b.set_version(2)?;
        b.set_serial_number(&serial)?;
        b.set_subject_name(&name)?;
        b.set_issuer_name(&name)?;
        b.set_pubkey(&key)?;
        b.set_not_before(&not_before)?;
        b.set_not_after(&not_after)?;
        b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
        b.append_extension(KeyUsage::new().critical().key_cert_sign().build()?)?;
        b.sign(&key, MessageDigest::sha256())?;
        Ok(Self {
            cert: b.build(),
            key,
        })
    }

    /// A client certificate for `user` in group `system:masters`: X.509 v1 (no extensions at
    /// all, as microk8s issues them) or v3 (clientAuth).
    fn client_cert(&self, user: &str, key: &PKey<Private>, v1: bool) -> Result<X509> {
        let serial = serial()?;
        let subject = name(user, Some("system:masters"))?;
        // An hour back: the apiserver and this process share a clock, but be kind to others.
        let not_before = Asn1Time::from_unix(jiff::Timestamp::now().as_second() - 3600)?;
        let not_after = Asn1Time::days_from_now(1)?;
        let mut b = X509::builder()?;
        b.set_version(if v1 { 0 } else { 2 })?;
        b.set_serial_number(&serial)?;
        b.set_subject_name(&subject)?;
        b.set_issuer_name(self.cert.subject_name())?;
        b.set_pubkey(key)?;
        b.set_not_before(&not_before)?;
        b.set_not_after(&not_after)?;
        if !v1 {
            b.append_extension(BasicConstraints::new().critical().build()?)?;
            b.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
            b.append_extension(ExtendedKeyUsage::new().client_auth().build()?)?;
        }
        b.sign(&self.key, MessageDigest::sha256())?;
        let cert = b.build();
        ensure!(
            cert.version() == if v1 { 0 } else { 2 },
            "issued certificate has version field {}",
            cert.version()
        );
        Ok(cert)
    }
}

fn name(cn: &str, org: Option<&str>) -> Result<openssl::x509::X509Name> {
    let mut n = X509NameBuilder::new()?;
    if let Some(org) = org {
        n.append_entry_by_nid(Nid::ORGANIZATIONNAME, org)?;
    }
    n.append_entry_by_nid(Nid::COMMONNAME, cn)?;
    Ok(n.build())
}

fn serial() -> Result<openssl::asn1::Asn1Integer> {
    let mut bn = BigNum::new()?;
    bn.rand(127, MsbOption::MAYBE_ZERO, false)?;
    Ok(bn.to_asn1_integer()?)
}

fn pem(cert: &X509) -> Result<String> {
    Ok(String::from_utf8(cert.to_pem()?)?)
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

// ---------------------------------------------------------------------------------------------
// The cluster under test, as the admin kubeconfig describes it.

struct Server {
    /// `https://host:port`.
    url: String,
    /// The CA certificates (PEM) the admin kubeconfig trusts.
    ca_pem: String,
}

impl Server {
    fn from_admin_kubeconfig(path: &Path) -> Result<Self> {
        let kc = Kubeconfig::read_from(path)?;
        let context_name = kc
            .current_context
            .clone()
            .context("the e2e kubeconfig has no current-context")?;
        let context = kc
            .contexts
            .iter()
            .find(|c| c.name == context_name)
            .and_then(|c| c.context.clone())
            .context("current context not found")?;
        let cluster = kc
            .clusters
            .iter()
            .find(|c| c.name == context.cluster)
            .and_then(|c| c.cluster.clone())
            .context("cluster of the current context not found")?;
        let url = cluster.server.context("the cluster has no server")?;
        let ca_pem = match (
            &cluster.certificate_authority_data,
            &cluster.certificate_authority,
        ) {
            (Some(data), _) => {
                String::from_utf8(base64::engine::general_purpose::STANDARD.decode(data.trim())?)?
            }
            (None, Some(file)) => std::fs::read_to_string(file)?,
            (None, None) => bail!("the e2e kubeconfig's cluster has no certificate-authority"),
        };
        Ok(Self { url, ca_pem })
    }

    /// The certificate the server presents (its leaf), fetched without verification.
    fn presented_certificate(&self) -> Result<X509> {
        let authority = self
            .url
            .strip_prefix("https://")
            .context("server URL is not https")?
            .trim_end_matches('/');
        let host = authority
            .rsplit_once(':')
            .map_or(authority, |(h, _)| h)
            .trim_matches(['[', ']']);
        let mut builder = SslConnector::builder(SslMethod::tls())?;
        builder.set_verify(SslVerifyMode::NONE);
        let connector = builder.build();
        let authority = if authority.contains(':') {
            authority.to_owned()
        } else {
            format!("{authority}:443")
        };
        let tcp = std::net::TcpStream::connect(&authority)?;
        let tls = connector
            .configure()?
            .verify_hostname(false)
            .connect(host, tcp)
            .map_err(|e| anyhow::anyhow!("TLS handshake with {authority}: {e}"))?;
        tls.ssl()
            .peer_certificate()
            .context("the server presented no certificate")
    }

    /// A kubeconfig with this server, `cluster` fields added to `server`, and `user`.
    fn kubeconfig(&self, cluster: Value, user: Value) -> Value {
        let mut cluster_fields = json!({ "server": self.url });
        if let (Some(map), Value::Object(extra)) = (cluster_fields.as_object_mut(), cluster) {
            map.extend(extra);
        }
        json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{ "name": "c", "cluster": cluster_fields }],
            "users": [{ "name": "u", "user": user }],
            "contexts": [{ "name": "x", "context": { "cluster": "c", "user": "u" } }],
            "current-context": "x",
        })
    }

    fn trusted(&self) -> Value {
        json!({ "certificate-authority-data": b64(&self.ca_pem) })
    }
}

/// An exec credential plugin: a shell script printing `credential_status` as the `status` of an
/// ExecCredential (client.authentication.k8s.io/v1beta1, which kubectl 1.20 and 1.37 both read).
fn exec_plugin(dir: &Path, stem: &str, credential_status: Value) -> Result<Value> {
    use std::os::unix::fs::PermissionsExt as _;
    let api_version = "client.authentication.k8s.io/v1beta1";
    let credential = json!({
        "apiVersion": api_version,
        "kind": "ExecCredential",
        "status": credential_status,
    });
    let path = dir.join(format!("{stem}.sh"));
    std::fs::write(
        &path,
        format!("#!/bin/sh\ncat <<'EOF'\n{credential}\nEOF\n"),
    )?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
    Ok(
        json!({ "exec": { "apiVersion": api_version, "command": path, "interactiveMode": "Never" } }),
    )
}

async fn namespace_with_statefulset(scenario: &str) -> Result<TestNs> {
    let ns = TestNs::new(scenario).await?;
    ns.create_sts(&StsFixture::new(STS, 0).build()).await?;
    Ok(ns)
}

#[tokio::test]
async fn client_certificates_of_every_shape() -> Result<()> {
    let ca = Ca::cluster()?;
    let ns = namespace_with_statefulset("tls-client-certs").await?;
    let server = Server::from_admin_kubeconfig(&ns.env.kubeconfig)?;
    let dir = tempfile::tempdir()?;

    let cert_user = |what: &str, shape: KeyShape, v1: bool| -> Result<(String, String)> {
        let (key, key_pem) = key_of(shape)?;
        let cert = ca.client_cert(&format!("sts-e2e-{what}"), &key, v1)?;
        Ok((pem(&cert)?, key_pem))
    };
    let data = |(cert, key): (String, String)| json!({ "client-certificate-data": b64(&cert), "client-key-data": b64(&key) });

    let mut rows = Vec::new();
    for (what, shape, v1) in [
        (
            "v3 client certificate, RSA key (PKCS#1)",
            KeyShape::RsaPkcs1,
            false,
        ),
        (
            "v3 client certificate, EC P-256 key (SEC1)",
            KeyShape::EcSec1,
            false,
        ),
        (
            "v3 client certificate, EC P-256 key (PKCS#8)",
            KeyShape::EcPkcs8,
            false,
        ),
        (
            "v3 client certificate, Ed25519 key (PKCS#8)",
            KeyShape::Ed25519,
            false,
        ),
        (
            "v1 client certificate, RSA key (PKCS#1), as microk8s",
            KeyShape::RsaPkcs1,
            true,
        ),
        (
            "v1 client certificate, EC P-256 key (SEC1)",
            KeyShape::EcSec1,
            true,
        ),
    ] {
        let user = data(cert_user(&format!("row{}", rows.len()), shape, v1)?);
        rows.push(Row {
            what,
            expect: Expect::Works,
            plugin_says: None,
            kubeconfig: server.kubeconfig(server.trusted(), user),
        });
    }

    // Files instead of data.
    let (cert, key) = cert_user("files", KeyShape::RsaPkcs1, true)?;
    let (cert_file, key_file) = (dir.path().join("v1.crt"), dir.path().join("v1.key"));
    std::fs::write(&cert_file, cert)?;
    std::fs::write(&key_file, key)?;
    rows.push(Row {
        what: "v1 client certificate and key as files",
        expect: Expect::Works,
        plugin_says: None,
        kubeconfig: server.kubeconfig(
            server.trusted(),
            json!({ "client-certificate": cert_file, "client-key": key_file }),
        ),
    });

    // An exec plugin that hands out a client certificate.
    let (cert, key) = cert_user("exec", KeyShape::EcSec1, true)?;
    let exec = exec_plugin(
        dir.path(),
        "exec-cert",
        json!({ "clientCertificateData": cert, "clientKeyData": key }),
    )?;
    rows.push(Row {
        what: "exec plugin returning a v1 client certificate",
        expect: Expect::Works,
        plugin_says: None,
        kubeconfig: server.kubeconfig(server.trusted(), exec),
    });

    // A well-formed certificate the cluster did not issue: both must be refused.
    let stranger = Ca::unrelated("sts-e2e-stranger-ca")?;
    let (key, key_pem) = key_of(KeyShape::RsaPkcs1)?;
    let cert = stranger.client_cert("sts-e2e-stranger", &key, false)?;
    rows.push(Row {
        what: "client certificate from a CA the cluster does not trust",
        expect: Expect::Refused,
        plugin_says: Some("did not accept the credentials"),
        kubeconfig: server.kubeconfig(server.trusted(), data((pem(&cert)?, key_pem))),
    });

    run_matrix(&ns, dir.path(), &rows)
}

/// A ServiceAccount in the test namespace that may read it, and a token for it.
async fn service_account_token(ns: &TestNs) -> Result<String> {
    let name = "tls-matrix";
    let sa: ServiceAccount = serde_json::from_value(json!({ "metadata": { "name": name } }))?;
    ns.api::<ServiceAccount>()
        .create(&PostParams::default(), &sa)
        .await?;
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": { "name": name },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view" },
        "subjects": [{ "kind": "ServiceAccount", "name": name, "namespace": ns.name }],
    }))?;
    ns.api::<RoleBinding>()
        .create(&PostParams::default(), &binding)
        .await?;
    let request: TokenRequest =
        serde_json::from_value(json!({ "spec": { "audiences": [], "expirationSeconds": 3600 } }))?;
    let issued = ns
        .api::<ServiceAccount>()
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .context("TokenRequest for the test ServiceAccount")?;
    let token = issued.status.map(|s| s.token).unwrap_or_default();
    ensure!(!token.is_empty(), "TokenRequest returned no token");
    Ok(token)
}

#[tokio::test]
async fn server_trust_and_credentials() -> Result<()> {
    let ns = namespace_with_statefulset("tls-server-trust").await?;
    let server = Server::from_admin_kubeconfig(&ns.env.kubeconfig)?;
    let dir = tempfile::tempdir()?;
    let token = service_account_token(&ns).await?;
    let bearer = json!({ "token": token });

    let stranger = pem(&Ca::unrelated("sts-e2e-stranger-ca")?.cert)?;
    let leaf = pem(&server.presented_certificate()?)?;
    let with = |extra: Value| -> Value {
        let mut trust = server.trusted();
        if let (Some(map), Value::Object(extra)) = (trust.as_object_mut(), extra) {
            map.extend(extra);
        }
        trust
    };
    let exec = exec_plugin(dir.path(), "exec-token", json!({ "token": token }))?;

    let rows = vec![
        Row {
            what: "bearer token",
            expect: Expect::Works,
            plugin_says: None,
            kubeconfig: server.kubeconfig(server.trusted(), bearer.clone()),
        },
        Row {
            what: "exec plugin returning a token",
            expect: Expect::Works,
            plugin_says: None,
            kubeconfig: server.kubeconfig(server.trusted(), exec),
        },
        Row {
            what: "CA bundle: an unrelated CA, then the cluster's CA",
            expect: Expect::Works,
            plugin_says: None,
            kubeconfig: server.kubeconfig(
                json!({ "certificate-authority-data": b64(&format!("{stranger}{}", server.ca_pem)) }),
                bearer.clone(),
            ),
        },
        Row {
            what: "certificate-authority-data is the server's own (leaf) certificate",
            expect: Expect::Works,
            plugin_says: None,
            kubeconfig: server.kubeconfig(
                json!({ "certificate-authority-data": b64(&leaf) }),
                bearer.clone(),
            ),
        },
        Row {
            what: "tls-server-name that the server certificate names",
            expect: Expect::Works,
            plugin_says: None,
            kubeconfig: server.kubeconfig(
                with(json!({ "tls-server-name": "kubernetes.default.svc" })),
                bearer.clone(),
            ),
        },
        Row {
            what: "tls-server-name that the server certificate does not name",
            expect: Expect::Refused,
            plugin_says: Some("does not verify: hostname mismatch"),
            kubeconfig: server.kubeconfig(
                with(json!({ "tls-server-name": "not-the-apiserver.example" })),
                bearer.clone(),
            ),
        },
        Row {
            what: "insecure-skip-tls-verify, no CA",
            expect: Expect::Works,
            plugin_says: None,
            kubeconfig: server.kubeconfig(
                json!({ "insecure-skip-tls-verify": true }),
                bearer.clone(),
            ),
        },
        Row {
            what: "no CA (system roots only)",
            expect: Expect::Refused,
            plugin_says: Some("does not verify: unable to get local issuer certificate"),
            kubeconfig: server.kubeconfig(json!({}), bearer.clone()),
        },
        Row {
            what: "certificate-authority-data that is not PEM",
            expect: Expect::Refused,
            plugin_says: Some("holds no PEM certificate"),
            kubeconfig: server.kubeconfig(
                json!({ "certificate-authority-data": b64("hello world") }),
                bearer.clone(),
            ),
        },
        Row {
            what: "only an unrelated CA",
            expect: Expect::Refused,
            plugin_says: Some("does not verify: unable to get local issuer certificate"),
            kubeconfig: server.kubeconfig(
                json!({ "certificate-authority-data": b64(&stranger) }),
                bearer.clone(),
            ),
        },
        Row {
            what: "a token the cluster did not issue",
            expect: Expect::Refused,
            plugin_says: Some("did not accept the credentials"),
            kubeconfig: server.kubeconfig(server.trusted(), json!({ "token": "not-a-token" })),
        },
    ];
    run_matrix(&ns, dir.path(), &rows)
}
