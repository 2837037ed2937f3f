//! The service-account assertion of the JWT bearer grant (RFC 7523): an RS256-signed JWT
//! naming the account, the scope, the token endpoint and a lifetime of at most an hour.

use crate::auth::credentials::ServiceAccountKey;
use crate::error::{DriveError, DriveErrorKind};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use serde::Serialize;

/// The longest lifetime Google accepts for an assertion.
pub const ASSERTION_LIFETIME_SECS: i64 = 3600;

/// Signs assertions with one service account's key (parsed once).
pub struct Signer {
    key: RsaKeyPair,
    rng: SystemRandom,
    client_email: String,
    key_id: String,
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    kid: &'a str,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
}

fn invalid_key(why: impl std::fmt::Display) -> DriveError {
    DriveError::new(
        DriveErrorKind::Auth,
        format!("the service-account private key is unusable: {why}"),
    )
}

/// DER bytes of the first PEM block (`-----BEGIN ...-----`).
fn pem_to_der(pem: &str) -> Result<Vec<u8>, DriveError> {
    let mut inside = false;
    let mut b64 = String::new();
    for line in pem.lines().map(str::trim) {
        if line.starts_with("-----BEGIN ") {
            inside = true;
        } else if line.starts_with("-----END ") {
            break;
        } else if inside {
            b64.push_str(line);
        }
    }
    if b64.is_empty() {
        return Err(invalid_key("not a PEM block"));
    }
    STANDARD
        .decode(b64.as_bytes())
        .map_err(|_| invalid_key("bad base64 in the PEM block"))
}

impl Signer {
    pub fn new(key: &ServiceAccountKey) -> Result<Self, DriveError> {
        if key.client_email.is_empty() {
            return Err(invalid_key("client_email is empty"));
        }
        let der = pem_to_der(key.private_key.expose())?;
        let pair = RsaKeyPair::from_pkcs8(&der)
            .or_else(|_| RsaKeyPair::from_der(&der))
            .map_err(|e| invalid_key(format!("not an RSA key ring accepts ({e})")))?;
        Ok(Self {
            key: pair,
            rng: SystemRandom::new(),
            client_email: key.client_email.clone(),
            key_id: key.private_key_id.clone(),
        })
    }

    /// A signed assertion issued at `now` (Unix seconds).
    pub fn assertion(
        &self,
        scope: &str,
        audience: &str,
        subject: Option<&str>,
        now: i64,
    ) -> Result<String, DriveError> {
        let header = Header {
            alg: "RS256",
            typ: "JWT",
            kid: &self.key_id,
        };
        let claims = Claims {
            iss: &self.client_email,
            scope,
            aud: audience,
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
            sub: subject,
        };
        let signing_input = format!("{}.{}", b64_json(&header)?, b64_json(&claims)?);
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &self.rng,
                signing_input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| invalid_key("signing failed"))?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

fn b64_json<T: Serialize>(v: &T) -> Result<String, DriveError> {
    let bytes = serde_json::to_vec(v)
        .map_err(|e| DriveError::with(DriveErrorKind::Invalid, "cannot encode the JWT", e))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}
