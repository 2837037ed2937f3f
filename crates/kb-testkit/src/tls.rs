//! Throwaway TLS certificates for tests, made in process (rcgen, pure Rust: no OpenSSL, no
//! `openssl` command): a CA, a server certificate for 127.0.0.1 and localhost, and a client
//! certificate, both signed by it.

use std::path::PathBuf;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tempfile::TempDir;
use time::{Duration, OffsetDateTime};

/// A CA and the certificates it signed (PEM, ECDSA P-256, valid from yesterday for two days).
/// The files go with the value.
#[derive(Debug)]
pub struct TestCerts {
    dir: TempDir,
}

impl TestCerts {
    /// Makes a new CA, `server.pem` (SAN IP:127.0.0.1, DNS:localhost) and `client.pem`.
    pub fn generate() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("kb-tls-")
            .tempdir()
            .context("cannot create a temp dir for certificates")?;
        let write = |name: &str, pem: String| {
            std::fs::write(dir.path().join(name), pem)
                .with_context(|| format!("cannot write {name}"))
        };

        let mut ca = params(Vec::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "kb-test-ca");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().context("generating the CA key")?;
        write("ca.pem", ca.self_signed(&ca_key)?.pem())?;
        write("ca.key", ca_key.serialize_pem())?;
        let issuer = Issuer::new(ca, ca_key);

        for (name, sans, cn, usage) in [
            (
                "server",
                vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
                "127.0.0.1",
                ExtendedKeyUsagePurpose::ServerAuth,
            ),
            (
                "client",
                Vec::new(),
                "kb-test-client",
                ExtendedKeyUsagePurpose::ClientAuth,
            ),
        ] {
            let mut p = params(sans)?;
            p.distinguished_name.push(DnType::CommonName, cn);
            p.use_authority_key_identifier_extension = true;
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            p.extended_key_usages = vec![usage];
            let key = KeyPair::generate().with_context(|| format!("generating the {name} key"))?;
            write(&format!("{name}.pem"), p.signed_by(&key, &issuer)?.pem())?;
            write(&format!("{name}.key"), key.serialize_pem())?;
        }
        Ok(Self { dir })
    }

    /// The CA certificate: what a client (or a server verifying clients) trusts.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }
    pub fn server_key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }
    pub fn client_cert(&self) -> PathBuf {
        self.dir.path().join("client.pem")
    }
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client.key")
    }
}

/// Parameters valid from yesterday (clock skew) for two days, with these subject alt names
/// (IP addresses are recognised as such).
fn params(sans: Vec<String>) -> anyhow::Result<CertificateParams> {
    let mut p = CertificateParams::new(sans).context("certificate names")?;
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::days(1);
    p.not_after = now + Duration::days(2);
    Ok(p)
}
