//! TLS: rustls server configuration with a certificate that is hot-reloaded from disk.
//!
//! Kubernetes mounts the serving certificate from a Secret; when it is renewed (cert-manager,
//! or a re-run of `certs/install-self-signed.sh`), the kubelet swaps a `..data` symlink so
//! both files change at once. [`ReloadingCert`] polls the *contents* of the two paths (which
//! follows symlinks, so a swap is seen like any other write) and swaps the `Arc` handed to new
//! handshakes. Connections already established keep their session: nothing is dropped.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, version};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why TLS material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("failed to read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} {path} holds no PEM certificate")]
    NoCertificate { what: &'static str, path: PathBuf },
    #[error("failed to parse {what} {path}: {source}")]
    Pem {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("certificate {cert} and key {key} do not form a usable pair: {source}")]
    Pair {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("client CA {path} is not usable: {message}")]
    ClientCa { path: PathBuf, message: String },
    #[error("failed to build the TLS configuration: {0}")]
    Config(#[source] rustls::Error),
}

/// The crypto provider used everywhere (ring, as chosen by the workspace).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a certificate chain and its private key and checks that they belong together.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let cert_pem = read(cert, "certificate")?;
    let key_pem = read(key, "private key")?;
    certified_key_from_pem(cert, &cert_pem, key, &key_pem)
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

fn parse_certs(
    path: &Path,
    pem: &[u8],
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            what,
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            what,
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

fn certified_key_from_pem(
    cert_path: &Path,
    cert_pem: &[u8],
    key_path: &Path,
    key_pem: &[u8],
) -> Result<CertifiedKey, TlsError> {
    let chain = parse_certs(cert_path, cert_pem, "certificate")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|source| TlsError::Pem {
        what: "private key",
        path: key_path.to_owned(),
        source,
    })?;
    // from_der also checks that the key matches the certificate: a half-written rotation
    // (new cert, old key) is rejected here and retried on the next poll.
    CertifiedKey::from_der(chain, key, &provider()).map_err(|source| TlsError::Pair {
        cert: cert_path.to_owned(),
        key: key_path.to_owned(),
        source,
    })
}

/// The serving certificate, swappable while the server runs.
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    state: RwLock<Loaded>,
}

struct Loaded {
    key: Arc<CertifiedKey>,
    /// The file contents `key` was built from, to notice changes.
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

/// What a reload attempt did.
#[derive(Debug, PartialEq, Eq)]
pub enum Reload {
    Unchanged,
    Reloaded,
}

impl ReloadingCert {
    /// Loads the pair now; fails if it is unusable (the server should not start without it).
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Arc<Self>, TlsError> {
        let cert_pem = read(cert_path, "certificate")?;
        let key_pem = read(key_path, "private key")?;
        let key = certified_key_from_pem(cert_path, &cert_pem, key_path, &key_pem)?;
        Ok(Arc::new(ReloadingCert {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            state: RwLock::new(Loaded {
                key: Arc::new(key),
                cert_pem,
                key_pem,
            }),
        }))
    }

    /// The certificate currently served.
    pub fn current(&self) -> Arc<CertifiedKey> {
        match self.state.read() {
            Ok(s) => s.key.clone(),
            Err(poisoned) => poisoned.into_inner().key.clone(),
        }
    }

    /// Re-reads both files; swaps in the new pair if they changed and are valid. On error the
    /// old pair stays in use.
    pub fn reload(&self) -> Result<Reload, TlsError> {
        let cert_pem = read(&self.cert_path, "certificate")?;
        let key_pem = read(&self.key_path, "private key")?;
        {
            let s = match self.state.read() {
                Ok(s) => s,
                Err(poisoned) => poisoned.into_inner(),
            };
            if s.cert_pem == cert_pem && s.key_pem == key_pem {
                return Ok(Reload::Unchanged);
            }
        }
        let key = certified_key_from_pem(&self.cert_path, &cert_pem, &self.key_path, &key_pem)?;
        let mut s = match self.state.write() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        *s = Loaded {
            key: Arc::new(key),
            cert_pem,
            key_pem,
        };
        Ok(Reload::Reloaded)
    }

    /// Polls the files every `interval` forever, logging reloads and failures.
    pub async fn watch(self: Arc<Self>, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let this = self.clone();
            // File reads and key parsing are blocking work.
            let result = tokio::task::spawn_blocking(move || this.reload()).await;
            match result {
                Ok(Ok(Reload::Reloaded)) => tracing::info!(
                    cert = %self.cert_path.display(),
                    "serving certificate reloaded"
                ),
                Ok(Ok(Reload::Unchanged)) => {}
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, "serving certificate not reloaded; keeping the current one")
                }
                Err(err) => tracing::warn!(error = %err, "certificate reload task failed"),
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The rustls server configuration: TLS 1.2 and 1.3, HTTP/1.1 via ALPN, the reloading
/// certificate, and client certificates required when `client_ca` is given.
pub fn server_config(
    cert: Arc<ReloadingCert>,
    client_ca: Option<&Path>,
) -> Result<ServerConfig, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&version::TLS13, &version::TLS12])
        .map_err(TlsError::Config)?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let pem = read(path, "client CA")?;
            let mut roots = RootCertStore::empty();
            for c in parse_certs(path, &pem, "client CA")? {
                roots.add(c).map_err(|e| TlsError::ClientCa {
                    path: path.to_owned(),
                    message: e.to_string(),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| TlsError::ClientCa {
                    path: path.to_owned(),
                    message: e.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(cert);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(name: &str) -> (String, String) {
        let c = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        (c.cert.pem(), c.key_pair.serialize_pem())
    }

    #[test]
    fn reload_swaps_only_valid_changes() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("tls.crt");
        let key = dir.path().join("tls.key");
        let (c1, k1) = pair("one.test");
        std::fs::write(&cert, &c1).unwrap();
        std::fs::write(&key, &k1).unwrap();
        let r = ReloadingCert::load(&cert, &key).unwrap();
        let first = r.current();
        assert_eq!(r.reload().unwrap(), Reload::Unchanged);

        // half-way rotation: new cert, old key -> rejected, old pair kept
        let (c2, k2) = pair("two.test");
        std::fs::write(&cert, &c2).unwrap();
        let err = r.reload().unwrap_err();
        assert!(matches!(err, TlsError::Pair { .. }), "{err}");
        assert!(Arc::ptr_eq(&first, &r.current()));

        std::fs::write(&key, &k2).unwrap();
        assert_eq!(r.reload().unwrap(), Reload::Reloaded);
        assert_ne!(first.cert[0], r.current().cert[0]);
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.crt");
        let err = ReloadingCert::load(&missing, &missing).unwrap_err();
        assert!(err.to_string().contains("nope.crt"), "{err}");
        let empty = dir.path().join("empty.crt");
        std::fs::write(&empty, "not pem").unwrap();
        let err = ReloadingCert::load(&empty, &empty).unwrap_err();
        assert!(err.to_string().contains("empty.crt"), "{err}");
    }
}
