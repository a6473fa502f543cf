//! Certificates for the local control plane, generated fresh for every run (nothing committed).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::error::{HarnessError, Result};

/// A generated certificate and its key, in memory and on disk.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// The cluster CA: signs the apiserver serving cert, client certs and the webhook cert.
pub struct CertAuthority {
    cert: Certificate,
    key: KeyPair,
    pub issued: Issued,
}

/// Every certificate and key the control plane needs.
pub struct ClusterPki {
    pub ca: CertAuthority,
    pub apiserver: Issued,
    pub admin: Issued,
    /// Service-account signing key (private) and its public half for the apiserver.
    pub sa_key_file: PathBuf,
    pub sa_pub_file: PathBuf,
}

fn cert_err(what: &'static str) -> impl FnOnce(rcgen::Error) -> HarnessError {
    move |source| HarnessError::Cert { what, source }
}

fn write(path: &Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents)
        .map_err(|e| HarnessError::io(format!("cannot write {}", path.display()), e))?;
    restrict(path)
}

#[cfg(unix)]
fn restrict(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| HarnessError::io(format!("cannot chmod {}", path.display()), e))
}

fn save(dir: &Path, stem: &str, cert: &Certificate, key: &KeyPair) -> Result<Issued> {
    let cert_file = dir.join(format!("{stem}.crt"));
    let key_file = dir.join(format!("{stem}.key"));
    let issued = Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert_der: cert.der().to_vec(),
        key_der: key.serialize_der(),
        cert_file,
        key_file,
    };
    write(&issued.cert_file, &issued.cert_pem)?;
    write(&issued.key_file, &issued.key_pem)?;
    Ok(issued)
}

impl CertAuthority {
    /// A new self-signed CA, written to `dir/<stem>.crt|key`.
    pub fn generate(dir: &Path, stem: &str, common_name: &str) -> Result<Self> {
        let key = KeyPair::generate().map_err(cert_err("CA key"))?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err("CA"))?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).map_err(cert_err("CA"))?;
        let issued = save(dir, stem, &cert, &key)?;
        Ok(Self { cert, key, issued })
    }

    /// A serving certificate for `sans` (DNS names or IP addresses).
    pub fn serving(&self, dir: &Path, stem: &str, cn: &str, sans: &[&str]) -> Result<Issued> {
        let key = KeyPair::generate().map_err(cert_err("serving key"))?;
        let sans: Vec<String> = sans.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(sans).map_err(cert_err("serving cert"))?;
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .map_err(cert_err("serving cert"))?;
        save(dir, stem, &cert, &key)
    }

    /// A client certificate; Kubernetes reads the user from CN and groups from O.
    pub fn client(&self, dir: &Path, stem: &str, user: &str, groups: &[&str]) -> Result<Issued> {
        let key = KeyPair::generate().map_err(cert_err("client key"))?;
        let mut params =
            CertificateParams::new(Vec::<String>::new()).map_err(cert_err("client cert"))?;
        params.distinguished_name.push(DnType::CommonName, user);
        for g in groups {
            params.distinguished_name.push(DnType::OrganizationName, *g);
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .map_err(cert_err("client cert"))?;
        save(dir, stem, &cert, &key)
    }
}

impl ClusterPki {
    /// Generates the CA, the apiserver serving cert (127.0.0.1, localhost and the in-cluster
    /// names), an admin client cert in `system:masters`, and the service-account key pair.
    pub fn generate(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| HarnessError::io(format!("cannot create {}", dir.display()), e))?;
        let ca = CertAuthority::generate(dir, "ca", "sts-e2e-ca")?;
        let apiserver = ca.serving(
            dir,
            "apiserver",
            "kube-apiserver",
            &[
                "127.0.0.1",
                "localhost",
                "10.0.0.1",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
        )?;
        let admin = ca.client(dir, "admin", "sts-e2e-admin", &["system:masters"])?;
        let sa = KeyPair::generate().map_err(cert_err("service-account key"))?;
        let sa_key_file = dir.join("sa.key");
        let sa_pub_file = dir.join("sa.pub");
        write(&sa_key_file, &sa.serialize_pem())?;
        // The apiserver's key reader takes EC keys as PKIX public keys or SEC1 private keys,
        // not PKCS#8; give it the public half.
        write(&sa_pub_file, &sa.public_key_pem())?;
        Ok(Self {
            ca,
            apiserver,
            admin,
            sa_key_file,
            sa_pub_file,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_files_that_parse_as_pem() {
        let dir = tempfile::tempdir().unwrap();
        let pki = ClusterPki::generate(dir.path()).unwrap();
        for f in [
            &pki.ca.issued.cert_file,
            &pki.apiserver.cert_file,
            &pki.apiserver.key_file,
            &pki.admin.cert_file,
            &pki.admin.key_file,
            &pki.sa_key_file,
            &pki.sa_pub_file,
        ] {
            let text = std::fs::read_to_string(f).unwrap();
            assert!(
                text.starts_with("-----BEGIN "),
                "{} is not PEM",
                f.display()
            );
        }
        assert!(pki.apiserver.cert_pem.contains("CERTIFICATE"));
        assert_ne!(pki.admin.cert_der, pki.apiserver.cert_der);
    }

    #[test]
    fn serving_cert_verifies_against_ca_for_loopback() {
        use rustls::client::danger::ServerCertVerifier;
        use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
        let dir = tempfile::tempdir().unwrap();
        let pki = ClusterPki::generate(dir.path()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(pki.ca.issued.cert_der.clone()))
            .unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(roots.into(), provider)
                .build()
                .unwrap();
        let leaf = CertificateDer::from(pki.apiserver.cert_der.clone());
        let ip: ServerName = ServerName::try_from("127.0.0.1").unwrap();
        verifier
            .verify_server_cert(&leaf, &[], &ip, &[], UnixTime::now())
            .unwrap();
        let other: ServerName = ServerName::try_from("example.com").unwrap();
        assert!(
            verifier
                .verify_server_cert(&leaf, &[], &other, &[], UnixTime::now())
                .is_err()
        );
    }
}
