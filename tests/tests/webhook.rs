//! e2e: what the webhook and its reconciler do to StatefulSets and Services on a real
//! apiserver (see docs/e2e-scenarios.md).

mod common;

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, ensure};
use common::*;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

/// The walkthrough's `nginx-stateful`: no serviceName, no Service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_stateful_gets_service_name_headless_service_and_dns() -> Result<()> {
    let ns = TestNs::new("nginx-stateful").await?;
    let name = "nginx-stateful";
    let created = ns.create_sts(&StsFixture::new(name, 3).build()).await?;

    // The mutation happened at admission: the stored object already has the serviceName.
    let spec = created
        .spec
        .as_ref()
        .context("created StatefulSet has no spec")?;
    ensure!(
        spec.service_name.as_deref() == Some(name),
        "serviceName was not injected at admission: {:?}",
        spec.service_name
    );

    // Admission answers first and creates the Service right after (--create-wait 0s, the
    // default): it usually exists by the time the create returns, else milliseconds later. A
    // minute-long resync is not what brings it: it must be there within a few seconds.
    let returned = std::time::Instant::now();
    let services = ns.services();
    let mut polls = 0;
    let svc = loop {
        if let Some(svc) = services.get_opt(name).await? {
            break svc;
        }
        polls += 1;
        ensure!(
            returned.elapsed() < std::time::Duration::from_secs(5),
            "Service {name} did not appear within 5 s of the StatefulSet create returning"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    eprintln!(
        "Service {name}: existed when the create returned: {}; seen {:.0} ms after",
        polls == 0,
        returned.elapsed().as_secs_f64() * 1000.0
    );
    check_managed_headless(&svc, name, &BTreeMap::from([("app".into(), name.into())]))?;
    let ports = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    ensure!(
        ports.len() == 1
            && ports[0].port == 80
            && ports[0].protocol.as_deref().unwrap_or("TCP") == "TCP",
        "headless Service ports should be the container's port 80/TCP, got {ports:?}"
    );

    // At CREATE the StatefulSet had no uid; the reconciler adopts the Service afterwards.
    let uid = created
        .metadata
        .uid
        .clone()
        .context("StatefulSet has no uid")?;
    ns.wait_service_owned_by(name, name, &uid).await?;

    ns.wait_rollout_complete(name, 3).await?;
    let inspect = ns.plugin_json(&["inspect", name], "StatefulSetInspection")?;
    ensure!(
        inspect["service"]["name"] == name && inspect["service"]["health"] == "Ok",
        "inspect should report Service {name} as Ok, got {}",
        inspect["service"]
    );
    let want_dns = format!("{name}-0.{name}.{}.svc.cluster.local", ns.name);
    let pod0 = find_by(&inspect["pods"], "name", &format!("{name}-0"))
        .with_context(|| format!("inspect has no pod {name}-0: {}", inspect["pods"]))?;
    ensure!(
        pod0["dnsName"] == want_dns.as_str(),
        "inspect dnsName of {name}-0 = {}, expected {want_dns}",
        pod0["dnsName"]
    );
    ensure!(
        inspect["pods"].as_array().map(Vec::len) == Some(3),
        "inspect should list 3 pods: {}",
        inspect["pods"]
    );

    let list = ns.plugin_json(&["list"], "StatefulSetList")?;
    let item = find_by(&list["items"], "name", name)
        .with_context(|| format!("list does not show {name}: {list}"))?;
    ensure!(
        item["service"]["health"] == "Ok" && item["readyReplicas"] == 3,
        "list should show {name} with a healthy Service and 3 ready: {item}"
    );
    Ok(())
}

/// `--dry-run=server` create: the apiserver runs the webhook with dryRun=true; the patch shows
/// in the answer but no Service may be created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_create_makes_no_service() -> Result<()> {
    let ns = TestNs::new("dry-run").await?;
    let dry = ns
        .sts()
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &StsFixture::new("dry", 1).build(),
        )
        .await
        .context("dry-run create")?;
    ensure!(
        dry.spec.as_ref().and_then(|s| s.service_name.as_deref()) == Some("dry"),
        "the dry-run answer should carry the injected serviceName, got {:?}",
        dry.spec.as_ref().map(|s| &s.service_name)
    );
    // The webhook creates Services synchronously before answering, so anything it created
    // for the dry run would exist now.
    ensure!(
        ns.services().get_opt("dry").await?.is_none(),
        "a dry-run create made Service dry"
    );
    ensure!(
        ns.sts().get_opt("dry").await?.is_none(),
        "a dry-run create stored the StatefulSet"
    );

    // Control: the same create for real gets its Service, so the webhook is active here and
    // the absence above means something. Afterwards "dry" must still be absent.
    ns.create_sts(&StsFixture::new("real", 1).build()).await?;
    ns.wait_service("real").await?;
    ensure!(
        ns.services().get_opt("dry").await?.is_none(),
        "Service dry appeared after the dry run"
    );
    Ok(())
}

/// A non-headless Service with the StatefulSet's name already exists: the webhook must leave
/// it alone (clusterIP is immutable) and tell the client through an admission warning.
///
/// The warning comes from the webhook's Service cache, which its watch fills a few
/// milliseconds after the Service is stored. A Service created inside that window is found by
/// the create that follows the answer, left alone too, and logged instead (docs/webhook.md,
/// "When the Service is created"), so the test first waits until the webhook has seen it: a
/// dry-run create of the StatefulSet (which starts no create) is warned about.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_non_headless_service_is_untouched_and_warned_about() -> Result<()> {
    let ns = TestNs::new("non-headless").await?;
    let name = "plainsvc";
    let plain: Service = serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": {
            "type": "ClusterIP",
            "selector": { "app": name },
            "ports": [{ "name": "web", "port": 8080, "targetPort": 80 }]
        }
    }))?;
    let before = ns.services().create(&PostParams::default(), &plain).await?;

    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let fixture = StsFixture::new(name, 1).build();
    eventually(
        "the webhook's cache to hold the non-headless Service (a dry run warned about)",
        ns.timeout(),
        || async {
            let (_, warnings) = ns.create_with_warnings_params(&fixture, &dry_run).await?;
            Ok(if warnings.iter().any(|w| w.contains(name)) {
                Probe::Done(())
            } else {
                Probe::NotYet(format!("warnings {warnings:?}"))
            })
        },
    )
    .await?;

    let (created, warnings) = ns.create_with_warnings(&fixture).await?;
    ensure!(
        created
            .spec
            .as_ref()
            .and_then(|s| s.service_name.as_deref())
            == Some(name),
        "serviceName should still be injected, got {:?}",
        created.spec.as_ref().map(|s| &s.service_name)
    );
    ensure!(
        warnings.iter().any(|w| w.contains(name)),
        "expected an admission warning about the non-headless Service {name}, got {warnings:?}"
    );

    // Sync point: once a control StatefulSet's Service has been adopted, the reconciler has run
    // over this namespace after our StatefulSet existed.
    let control = ns
        .create_sts(&StsFixture::new("control", 1).build())
        .await?;
    let control_uid = control.metadata.uid.clone().context("control has no uid")?;
    ns.wait_service_owned_by("control", "control", &control_uid)
        .await?;

    let after = ns.services().get(name).await?;
    ensure!(
        after.metadata.resource_version == before.metadata.resource_version,
        "Service {name} was modified: {:?} -> {:?}",
        before.metadata,
        after.metadata
    );
    ensure!(
        after.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) != Some("None"),
        "Service {name} became headless?"
    );

    let inspect = ns.plugin_json(&["inspect", name], "StatefulSetInspection")?;
    ensure!(
        inspect["service"]["health"] == "NotHeadless",
        "inspect should report the Service as NotHeadless, got {}",
        inspect["service"]
    );
    Ok(())
}

/// The opt-out label: no serviceName injected and no Service created, neither by the webhook
/// nor by the reconciler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opt_out_label_means_nothing_is_injected() -> Result<()> {
    let ns = TestNs::new("opt-out").await?;
    let bare = ns
        .create_sts(
            &StsFixture::new("optout", 1)
                .label(OPT_OUT_LABEL, "false")
                .build(),
        )
        .await?;
    ensure!(
        bare.spec
            .as_ref()
            .and_then(|s| s.service_name.as_deref())
            .unwrap_or_default()
            .is_empty(),
        "serviceName was injected despite the opt-out label: {:?}",
        bare.spec.as_ref().map(|s| &s.service_name)
    );
    // Opted out with an explicit serviceName: the reconciler must not "heal" it either.
    ns.create_sts(
        &StsFixture::new("optout-named", 1)
            .service_name("optout-named-svc")
            .label(OPT_OUT_LABEL, "false")
            .build(),
    )
    .await?;

    // Sync point as above: a later StatefulSet was fully handled (Service created and adopted).
    let control = ns
        .create_sts(&StsFixture::new("control", 1).build())
        .await?;
    let uid = control.metadata.uid.clone().context("control has no uid")?;
    ns.wait_service_owned_by("control", "control", &uid).await?;

    let services: Vec<String> = ns
        .services()
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter_map(|s| s.metadata.name)
        .collect();
    ensure!(
        services == ["control"],
        "only the control StatefulSet should have a Service, found {services:?}"
    );
    Ok(())
}

/// The webhook cannot be reached: with failurePolicy Ignore the StatefulSet is still admitted,
/// and the reconciler later gives it its Service.
///
/// The real webhook skips namespaces labelled `headless.sts.dev/webhook: disabled`; this test's
/// namespace carries that label plus a unique label selected by an extra configuration that
/// points at nothing. So, for this namespace only, the cluster behaves as if the webhook were
/// down, while other tests keep using it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_webhook_still_admits_and_reconciler_heals() -> Result<()> {
    let marker = format!("unreachable-{}", std::process::id());
    let ns = TestNs::with_labels(
        "unreachable",
        BTreeMap::from([
            (NAMESPACE_OPT_OUT_LABEL.to_string(), "disabled".to_string()),
            ("sts-e2e.dev/unreachable".to_string(), marker.clone()),
        ]),
    )
    .await?;
    // The real registration must fail open too, or a down webhook would block StatefulSets.
    let real = Api::<MutatingWebhookConfiguration>::all(ns.client.clone())
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .flat_map(|c| c.webhooks.unwrap_or_default())
        .find(|w| w.name == WEBHOOK_NAME)
        .context("the sts-webhook registration disappeared")?;
    ensure!(
        real.failure_policy.as_deref() == Some("Ignore") && real.side_effects == "NoneOnDryRun",
        "{WEBHOOK_NAME} must have failurePolicy Ignore and sideEffects NoneOnDryRun, has {:?} / {}",
        real.failure_policy,
        real.side_effects
    );

    // Fail first, to observe that the apiserver really calls it (see below).
    let config_guard = register_unanswered_webhook(
        &ns,
        "unreachable.e2e.sts.dev",
        ("sts-e2e.dev/unreachable", &marker),
        json!({ "rules": [{
            "apiGroups": ["apps"], "apiVersions": ["v1"],
            "operations": ["CREATE", "UPDATE"], "resources": ["statefulsets"]
        }]}),
    )
    .await?;
    let config_name = config_guard.name.clone();

    // With failurePolicy Fail, a (dry-run) create is refused once the apiserver has picked up
    // the configuration: proof that the unreachable webhook is in the admission path. Then
    // Ignore, and wait until the same dry run is admitted.
    let probe = StsFixture::new("probe", 1).build();
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let sts_api = ns.sts();
    eventually(
        "the apiserver to call the unreachable webhook (dry-run create refused under failurePolicy Fail)",
        ns.timeout(),
        || async {
            Ok(match sts_api.create(&dry, &probe).await {
                Err(kube::Error::Api(status)) if status.message.contains("unreachable.e2e.sts.dev") => {
                    Probe::Done(status)
                }
                Err(e) => return Err(e.into()),
                Ok(_) => Probe::NotYet("dry-run create admitted: configuration not active yet".into()),
            })
        },
    )
    .await?;
    Api::<MutatingWebhookConfiguration>::all(ns.client.clone())
        .patch(
            &config_name,
            &PatchParams::default(),
            &Patch::Strategic(json!({ "webhooks": [
                { "name": "unreachable.e2e.sts.dev", "failurePolicy": "Ignore" }
            ] })),
        )
        .await
        .context("switching the unreachable webhook to failurePolicy Ignore")?;
    eventually(
        "a dry-run create to be admitted under failurePolicy Ignore",
        ns.timeout(),
        || async {
            Ok(match sts_api.create(&dry, &probe).await {
                Ok(_) => Probe::Done(()),
                Err(e) => Probe::NotYet(format!("refused: {e}")),
            })
        },
    )
    .await?;

    let name = "healme";
    let svc_name = "healme-svc";
    let created: StatefulSet = ns
        .create_sts(&StsFixture::new(name, 1).service_name(svc_name).build())
        .await
        .context("the StatefulSet must be admitted although its webhook is unreachable")?;
    let uid = created
        .metadata
        .uid
        .clone()
        .context("StatefulSet has no uid")?;

    // Proof that the real webhook really was out of the picture here (so the Service below can
    // only come from the reconciler): a StatefulSet without serviceName gets none injected.
    let bare = ns
        .create_sts(&StsFixture::new("nowebhook", 1).build())
        .await
        .context("the StatefulSet must be admitted although its webhook is unreachable")?;
    ensure!(
        bare.spec
            .as_ref()
            .and_then(|s| s.service_name.as_deref())
            .unwrap_or_default()
            .is_empty(),
        "the sts-webhook mutated a StatefulSet in a namespace labelled {NAMESPACE_OPT_OUT_LABEL}=disabled: serviceName {:?}",
        bare.spec.as_ref().map(|s| &s.service_name)
    );

    let svc = ns.wait_service(svc_name).await?;
    check_managed_headless(&svc, name, &BTreeMap::from([("app".into(), name.into())]))?;
    ns.wait_service_owned_by(svc_name, name, &uid).await?;
    Ok(())
}

/// A Service made by the webhook/reconciler for StatefulSet `sts`.
fn check_managed_headless(
    svc: &Service,
    sts: &str,
    selector: &BTreeMap<String, String>,
) -> Result<()> {
    let name = svc.metadata.name.as_deref().unwrap_or("?");
    let spec = svc.spec.as_ref().context("Service has no spec")?;
    ensure!(
        spec.cluster_ip.as_deref() == Some("None"),
        "Service {name} is not headless: clusterIP={:?}",
        spec.cluster_ip
    );
    ensure!(
        spec.selector.as_ref() == Some(selector),
        "Service {name} selector {:?}, expected {selector:?}",
        spec.selector
    );
    let labels = svc.metadata.labels.clone().unwrap_or_default();
    ensure!(
        labels.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY_VALUE),
        "Service {name} lacks {MANAGED_BY_LABEL}={MANAGED_BY_VALUE}: {labels:?}"
    );
    let annotations = svc.metadata.annotations.clone().unwrap_or_default();
    ensure!(
        annotations.get(STATEFULSET_ANNOTATION).map(String::as_str) == Some(sts),
        "Service {name} lacks annotation {STATEFULSET_ANNOTATION}={sts}: {annotations:?}"
    );
    Ok(())
}

/// Regression (issue 10): a manifest with `serviceName: ""`, created with `kubectl apply`
/// while the webhook runs, gets `serviceName` injected. Every later write that sends the
/// user's own manifest back (re-apply, a changed image, server-side apply, `kubectl diff`,
/// `kubectl replace`, an operator's Update without the field) used to be refused: the field is
/// immutable. The webhook now puts the stored value back, with a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewriting_from_the_users_manifest_keeps_the_injected_service_name() -> Result<()> {
    let ns = TestNs::new("reapply").await?;
    let name = "reapply";
    let manifest = |image: &str, service_name: Option<&str>| -> Result<String> {
        let mut fixture = StsFixture::new(name, 1);
        fixture.image = image.to_owned();
        if let Some(s) = service_name {
            fixture = fixture.service_name(s);
        }
        Ok(serde_json::to_string(&fixture.build())?)
    };
    let stored_name = || async {
        let sts = ns.sts().get(name).await?;
        anyhow::Ok(sts.spec.and_then(|s| s.service_name))
    };
    let original = manifest(IMAGE_V1, Some(""))?;
    ns.kubectl(&["apply", "-f", "-"], &original)?
        .expect_code(0)?;
    ensure!(
        stored_name().await?.as_deref() == Some(name),
        "the webhook did not inject serviceName at create"
    );
    let restored = |run: &PluginRun| -> Result<()> {
        ensure!(
            run.stderr
                .contains(&format!("kept spec.serviceName \"{name}\"")),
            "`{}` should warn that the stored serviceName was kept:\n{}",
            run.command,
            run.stderr
        );
        Ok(())
    };

    // The unchanged file, again.
    let run = ns.kubectl(&["apply", "-f", "-"], &original)?;
    run.expect_code(0)?;
    restored(&run)?;
    // `kubectl diff` (a server-side dry run through the webhook) sees no change. Exit 0 means
    // no differences, 1 differences found.
    let run = ns.kubectl(&["diff", "-f", "-"], &original)?;
    run.expect_code(0)?;
    // A changed image: applied, and the template really changes.
    let changed = manifest(IMAGE_V2, Some(""))?;
    ns.kubectl(&["apply", "-f", "-"], &changed)?
        .expect_code(0)?;
    let sts = ns.sts().get(name).await?;
    let image = sts
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers[0].image.clone());
    ensure!(
        image.as_deref() == Some(IMAGE_V2),
        "the changed image was not applied: {image:?}"
    );
    // Server-side apply, on an object so far managed by client-side apply. Server-side apply
    // checks field ownership before admission: `kubectl-client-side-apply` set serviceName
    // (the injected value is attributed to the request that created the object), so a plain
    // server-side apply of "" may be refused as a conflict — never as an immutable-field
    // update — and `--force-conflicts` takes the field over.
    let run = ns.kubectl(&["apply", "--server-side", "-f", "-"], &changed)?;
    if run.code == Some(0) {
        restored(&run)?;
    } else {
        ensure!(
            run.stderr.contains("conflict") && run.stderr.contains(".spec.serviceName"),
            "a plain server-side apply may only fail with an ownership conflict on serviceName:\n{}",
            run.stderr
        );
    }
    let run = ns.kubectl(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        &changed,
    )?;
    run.expect_code(0)?;
    restored(&run)?;
    // Now server-side apply owns the field: re-applying needs no force.
    let run = ns.kubectl(&["apply", "--server-side", "-f", "-"], &changed)?;
    run.expect_code(0)?;
    restored(&run)?;
    // `kubectl replace` with "" and with no serviceName at all (older kubectl's client-side
    // schema wants the field, hence --validate=false; the server never required it).
    ns.kubectl(&["replace", "-f", "-"], &changed)?
        .expect_code(0)?;
    let absent = manifest(IMAGE_V2, None)?;
    let run = ns.kubectl(&["replace", "--validate=false", "-f", "-"], &absent)?;
    run.expect_code(0)?;
    restored(&run)?;
    // An operator's Update (PUT) from its own desired object, which has no serviceName.
    let live = ns.sts().get(name).await?;
    let mut desired = StsFixture::new(name, 2).build();
    if let Some(spec) = desired.spec.as_mut() {
        spec.service_name = None;
        spec.template
            .spec
            .as_mut()
            .context("template spec")?
            .containers[0]
            .image = Some(IMAGE_V2.to_owned());
    }
    desired.metadata.resource_version = live.metadata.resource_version.clone();
    let updated = ns
        .sts()
        .replace(name, &PostParams::default(), &desired)
        .await
        .context("an Update without serviceName should be admitted")?;
    ensure!(
        updated.spec.as_ref().and_then(|s| s.replicas) == Some(2)
            && updated
                .spec
                .as_ref()
                .and_then(|s| s.service_name.as_deref())
                == Some(name),
        "the Update should scale to 2 and keep serviceName {name}: {:?}",
        updated
            .spec
            .as_ref()
            .map(|s| (&s.replicas, &s.service_name))
    );
    ensure!(
        stored_name().await?.as_deref() == Some(name),
        "serviceName changed"
    );

    // Server-side apply from the start: created, then re-applied unchanged, without force.
    let ssa = "reapply-ssa";
    let mut fixture = StsFixture::new(ssa, 1).service_name("");
    fixture.image = IMAGE_V1.to_owned();
    let manifest = serde_json::to_string(&fixture.build())?;
    ns.kubectl(&["apply", "--server-side", "-f", "-"], &manifest)?
        .expect_code(0)?;
    let run = ns.kubectl(&["apply", "--server-side", "-f", "-"], &manifest)?;
    run.expect_code(0)?;
    ensure!(
        run.stderr
            .contains(&format!("kept spec.serviceName \"{ssa}\"")),
        "the server-side re-apply should warn that serviceName was kept:\n{}",
        run.stderr
    );
    let stored = ns.sts().get(ssa).await?;
    ensure!(
        stored.spec.and_then(|s| s.service_name).as_deref() == Some(ssa),
        "serviceName of {ssa} should stay {ssa}"
    );
    Ok(())
}

/// Issue 10: `0db` derives the Service name `s-0db`, which a headless Service of other pods
/// already has. The webhook must not point the immutable `serviceName` at it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_derived_name_taken_by_a_service_of_other_pods_is_not_used() -> Result<()> {
    let ns = TestNs::new("collision").await?;
    let taken: Service = serde_json::from_value(json!({
        "metadata": { "name": "s-0db" },
        "spec": { "clusterIP": "None", "selector": { "app": "other" } }
    }))?;
    ns.services().create(&PostParams::default(), &taken).await?;
    // The webhook answers from its watch cache: a dry-run create (nothing is stored or created)
    // tells when it has seen the Service.
    let fixture = StsFixture::new("0db", 1).build();
    let dry_run = PostParams {
        dry_run: true,
        ..Default::default()
    };
    eventually(
        "the webhook's cache to hold s-0db",
        ns.timeout(),
        || async {
            let dry = ns.sts().create(&dry_run, &fixture).await?;
            let name = dry.spec.and_then(|s| s.service_name).unwrap_or_default();
            Ok(if name == "s-0db" {
                Probe::NotYet(format!("serviceName {name}"))
            } else {
                Probe::Done(())
            })
        },
    )
    .await?;
    let (created, warnings) = ns.create_with_warnings(&fixture).await?;
    let name = created
        .spec
        .as_ref()
        .and_then(|s| s.service_name.clone())
        .unwrap_or_default();
    ensure!(
        name == "s-0db-2",
        "serviceName should be s-0db-2, is {name:?}"
    );
    ensure!(
        warnings
            .iter()
            .any(|w| w.contains("s-0db already exists and selects other pods")),
        "the create should warn why: {warnings:?}"
    );
    let svc = ns.wait_service("s-0db-2").await?;
    check_managed_headless(&svc, "0db", &BTreeMap::from([("app".into(), "0db".into())]))?;
    let untouched = ns.services().get("s-0db").await?;
    ensure!(
        untouched.spec.and_then(|s| s.selector)
            == Some(BTreeMap::from([("app".into(), "other".into())])),
        "the other Service must not change"
    );
    Ok(())
}
