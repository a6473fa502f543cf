//! Making sure a StatefulSet's headless Service exists — without ever changing one that does.
//!
//! Used by the admission handler (at CREATE/UPDATE) and by the reconciler (healing). The
//! existence check reads the watch cache; the API is called only to create — and, in the rare
//! case where the create says "already exists" for a Service the cache has not seen yet, to read
//! that one Service so an existing non-headless Service is still reported.

use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, PostParams};
use sts_model::cached::CachedService;
use sts_model::headless::{
    ExistingService, Ownership, ServiceFacts, check_existing, not_headless_warning,
};

use crate::metrics::{Metrics, Source};

/// Something that can create Services: the real API client, or a fake in tests.
pub trait ServiceWriter: Send + Sync + 'static {
    /// Creates `svc` (its namespace is in its metadata). `Ok(false)` means it already existed.
    fn create<'a>(&'a self, svc: &'a Service) -> BoxFuture<'a, Result<bool, CreateError>>;

    /// Reads one Service. Called only after [`ServiceWriter::create`] answered "already exists"
    /// for a Service the cache had not seen. `Ok(None)`: it is gone again, or this writer
    /// cannot read (the default, for writers that never see that answer).
    fn get<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Service>, kube::Error>> {
        let _ = (namespace, name);
        Box::pin(async { Ok(None) })
    }
}

/// Why a Service could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("the Service to create has no namespace")]
    NoNamespace,
    #[error("failed to create Service {namespace}/{name}: {}", api_message(.source))]
    Api {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// The apiserver's own message when there is one: kube's Display appends the whole Status,
/// too long for a user-facing warning.
fn api_message(err: &kube::Error) -> std::borrow::Cow<'_, str> {
    match err {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.as_str().into(),
        other => other.to_string().into(),
    }
}

impl CreateError {
    /// Why, without the "failed to create Service ns/name" prefix.
    pub fn reason(&self) -> std::borrow::Cow<'_, str> {
        match self {
            CreateError::NoNamespace => "the Service has no namespace".into(),
            CreateError::Api { source, .. } => api_message(source),
        }
    }
}

impl ServiceWriter for kube::Client {
    fn create<'a>(&'a self, svc: &'a Service) -> BoxFuture<'a, Result<bool, CreateError>> {
        Box::pin(async move {
            let namespace = svc
                .metadata
                .namespace
                .as_deref()
                .ok_or(CreateError::NoNamespace)?;
            let api: Api<Service> = Api::namespaced(self.clone(), namespace);
            match api.create(&PostParams::default(), svc).await {
                Ok(_) => Ok(true),
                // Another replica or the reconciler won the race: that is success.
                Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(false),
                Err(source) => Err(CreateError::Api {
                    namespace: namespace.to_owned(),
                    name: svc.metadata.name.clone().unwrap_or_default(),
                    source,
                }),
            }
        })
    }

    fn get<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Service>, kube::Error>> {
        Box::pin(async move {
            Api::<Service>::namespaced(self.clone(), namespace)
                .get_opt(name)
                .await
        })
    }
}

/// What [`ensure_service`] found or did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ensured {
    /// The Service was missing and has been created.
    Created,
    /// The cache missed it but the API said it exists (created meanwhile) and it is headless,
    /// or it could not be read back: left alone.
    AlreadyExisted,
    /// A headless Service of that name exists: left alone.
    ExistsHeadless(Ownership),
    /// A Service of that name exists but is not headless: left alone; the warning says so.
    ExistsNotHeadless { warning: String },
}

impl Ensured {
    /// The warning to show the user, if any.
    pub fn warning(&self) -> Option<&str> {
        match self {
            Ensured::ExistsNotHeadless { warning } => Some(warning),
            _ => None,
        }
    }
}

/// Creates `desired` unless a Service of that name exists; never modifies an existing one.
///
/// `cached` is the cache's copy of the Service with `desired`'s namespace/name (None when the
/// cache has not seen it). `sts_name` is the StatefulSet the Service is for. Records metrics
/// under `source`. An error is returned only for a failed create; callers log it and carry on.
pub async fn ensure_service(
    writer: &dyn ServiceWriter,
    cached: Option<Arc<CachedService>>,
    desired: &Service,
    sts_name: &str,
    metrics: &Metrics,
    source: Source,
) -> Result<Ensured, CreateError> {
    if let Some(existing) = cached {
        return Ok(existing_outcome(&*existing, desired, sts_name, metrics));
    }
    match writer.create(desired).await {
        Ok(true) => {
            metrics.service_created(source);
            Ok(Ensured::Created)
        }
        Ok(false) => Ok(already_existed(writer, desired, sts_name, metrics).await),
        Err(err) => {
            metrics.error("create_service");
            Err(err)
        }
    }
}

/// The verdict on a Service that already exists (the cache's copy, or one just read from the
/// API): never touched; a warning if not headless.
fn existing_outcome<S: ServiceFacts + ?Sized>(
    existing: &S,
    desired: &Service,
    sts_name: &str,
    metrics: &Metrics,
) -> Ensured {
    check_existing_service(
        existing,
        desired.metadata.namespace.as_deref().unwrap_or_default(),
        desired.metadata.name.as_deref().unwrap_or_default(),
        sts_name,
        metrics,
    )
}

/// The verdict on the existing Service `namespace/name` wanted for StatefulSet `sts_name`:
/// never touched; a warning (and the `not_headless` metric) if it is not headless.
pub fn check_existing_service<S: ServiceFacts + ?Sized>(
    existing: &S,
    namespace: &str,
    name: &str,
    sts_name: &str,
    metrics: &Metrics,
) -> Ensured {
    match check_existing(existing, sts_name) {
        ExistingService::Headless(owner) => Ensured::ExistsHeadless(owner),
        ExistingService::NotHeadless => {
            metrics.service_skipped("not_headless");
            Ensured::ExistsNotHeadless {
                warning: not_headless_warning(namespace, name),
            }
        }
    }
}

/// The create lost a race the cache had not seen yet (the Service exists after all). Read that
/// one Service so a non-headless one still gets its warning; on a failed read, say nothing
/// rather than guess.
async fn already_existed(
    writer: &dyn ServiceWriter,
    desired: &Service,
    sts_name: &str,
    metrics: &Metrics,
) -> Ensured {
    let namespace = desired.metadata.namespace.as_deref().unwrap_or_default();
    let name = desired.metadata.name.as_deref().unwrap_or_default();
    match writer.get(namespace, name).await {
        Ok(Some(existing)) => match existing_outcome(&existing, desired, sts_name, metrics) {
            // Keep telling callers that the cache missed it.
            Ensured::ExistsHeadless(_) => Ensured::AlreadyExisted,
            other => other,
        },
        Ok(None) => Ensured::AlreadyExisted,
        Err(err) => {
            metrics.error("get_service");
            tracing::warn!(namespace, service = name, error = %err, "Service already exists but could not be read to check it is headless");
            Ensured::AlreadyExisted
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Mutex;

    /// What the fake's `get` answers.
    type Stored = fn() -> Result<Option<Service>, kube::Error>;

    /// Records creates and reads; answers with fixed results.
    pub(crate) struct FakeWriter {
        pub created: Mutex<Vec<Service>>,
        pub answer: fn() -> Result<bool, CreateError>,
        /// What `get` answers (None: the default "cannot read").
        pub stored: Option<Stored>,
        pub reads: Mutex<Vec<(String, String)>>,
    }

    impl FakeWriter {
        pub(crate) fn ok() -> Self {
            FakeWriter {
                created: Mutex::new(Vec::new()),
                answer: || Ok(true),
                stored: None,
                reads: Mutex::new(Vec::new()),
            }
        }
        pub(crate) fn failing() -> Self {
            FakeWriter {
                answer: || Err(CreateError::NoNamespace),
                ..FakeWriter::ok()
            }
        }
        /// The create answers AlreadyExists; `get` answers `stored`.
        pub(crate) fn already_exists(stored: Stored) -> Self {
            FakeWriter {
                answer: || Ok(false),
                stored: Some(stored),
                ..FakeWriter::ok()
            }
        }
    }

    impl ServiceWriter for FakeWriter {
        fn create<'a>(&'a self, svc: &'a Service) -> BoxFuture<'a, Result<bool, CreateError>> {
            Box::pin(async move {
                self.created.lock().unwrap().push(svc.clone());
                (self.answer)()
            })
        }

        fn get<'a>(
            &'a self,
            namespace: &'a str,
            name: &'a str,
        ) -> BoxFuture<'a, Result<Option<Service>, kube::Error>> {
            Box::pin(async move {
                self.reads
                    .lock()
                    .unwrap()
                    .push((namespace.to_owned(), name.to_owned()));
                match self.stored {
                    Some(stored) => stored(),
                    None => Ok(None),
                }
            })
        }
    }

    fn svc(cluster_ip: &str) -> Service {
        let mut s = Service::default();
        s.metadata.name = Some("web".into());
        s.metadata.namespace = Some("ns".into());
        s.spec = Some(k8s_openapi::api::core::v1::ServiceSpec {
            cluster_ip: Some(cluster_ip.into()),
            ..Default::default()
        });
        s
    }

    #[test]
    fn create_error_uses_the_apiserver_message() {
        let status =
            kube::core::Status::failure("exceeded quota: noservices", "Forbidden").with_code(403);
        let err = CreateError::Api {
            namespace: "ns".into(),
            name: "web".into(),
            source: kube::Error::Api(Box::new(status)),
        };
        assert_eq!(err.reason(), "exceeded quota: noservices");
        assert_eq!(
            err.to_string(),
            "failed to create Service ns/web: exceeded quota: noservices"
        );
    }

    #[tokio::test]
    async fn creates_when_absent() {
        let w = FakeWriter::ok();
        let m = Metrics::new();
        let r = ensure_service(&w, None, &svc("None"), "web", &m, Source::Admission).await;
        assert_eq!(r.unwrap(), Ensured::Created);
        assert_eq!(w.created.lock().unwrap().len(), 1);
        let mut text = String::new();
        m.encode(&mut text).unwrap();
        assert!(
            text.contains(r#"services_created_total{source="admission"} 1"#),
            "{text}"
        );
    }

    #[tokio::test]
    async fn leaves_existing_services_alone() {
        let w = FakeWriter::ok();
        let m = Metrics::new();
        let r = ensure_service(
            &w,
            Some(Arc::new(svc("None").into())),
            &svc("None"),
            "web",
            &m,
            Source::Admission,
        )
        .await
        .unwrap();
        assert_eq!(r, Ensured::ExistsHeadless(Ownership::Foreign));
        assert_eq!(r.warning(), None);
        let r = ensure_service(
            &w,
            Some(Arc::new(svc("10.0.0.1").into())),
            &svc("None"),
            "web",
            &m,
            Source::Reconciler,
        )
        .await
        .unwrap();
        assert!(r.warning().unwrap().contains("ns/web"), "{r:?}");
        assert!(w.created.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn already_exists_reads_the_service_and_warns_when_not_headless() {
        let m = Metrics::new();
        // The cache has not seen it, the create races with someone who made a ClusterIP one.
        let w = FakeWriter::already_exists(|| Ok(Some(svc("10.0.0.7"))));
        let r = ensure_service(&w, None, &svc("None"), "web", &m, Source::Admission)
            .await
            .unwrap();
        let warning = r.warning().unwrap_or_default();
        assert!(
            warning.contains("ns/web") && warning.contains("not headless"),
            "{r:?}"
        );
        assert_eq!(
            *w.reads.lock().unwrap(),
            vec![("ns".to_owned(), "web".to_owned())]
        );
        let mut text = String::new();
        m.encode(&mut text).unwrap();
        assert!(
            text.contains(r#"services_skipped_total{reason="not_headless"} 1"#),
            "{text}"
        );
        assert!(!text.contains("services_created_total{"), "{text}");

        // Headless after all, gone again, or unreadable: no warning, nothing changed.
        let headless = FakeWriter::already_exists(|| Ok(Some(svc("None"))));
        let gone = FakeWriter::already_exists(|| Ok(None));
        let unreadable = FakeWriter::already_exists(|| {
            Err(kube::Error::Api(Box::new(
                kube::core::Status::failure("forbidden", "Forbidden").with_code(403),
            )))
        });
        for w in [headless, gone, unreadable] {
            let r = ensure_service(&w, None, &svc("None"), "web", &m, Source::Admission)
                .await
                .unwrap();
            assert_eq!(r, Ensured::AlreadyExisted);
            assert_eq!(w.reads.lock().unwrap().len(), 1);
        }
        let mut text = String::new();
        m.encode(&mut text).unwrap();
        assert!(
            text.contains(r#"errors_total{kind="get_service"} 1"#),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_fresh_create_reads_nothing() {
        let w = FakeWriter::ok();
        let m = Metrics::new();
        let r = ensure_service(&w, None, &svc("None"), "web", &m, Source::Admission).await;
        assert_eq!(r.unwrap(), Ensured::Created);
        assert!(w.reads.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn create_failure_is_an_error_and_a_metric() {
        let w = FakeWriter::failing();
        let m = Metrics::new();
        let r = ensure_service(&w, None, &svc("None"), "web", &m, Source::Admission).await;
        assert!(r.is_err());
        let mut text = String::new();
        m.encode(&mut text).unwrap();
        assert!(
            text.contains(r#"errors_total{kind="create_service"} 1"#),
            "{text}"
        );
    }
}
