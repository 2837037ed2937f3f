//! The fake OAuth token endpoint: the JWT bearer grant, checked like the real one (RS256
//! signature against the registered public key, issuer, audience, scope, lifetime), and the
//! refresh-token grant. Also the test key pair, generated once per process.

use super::{App, Route};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::sha2::Sha256;
use rsa::signature::Verifier;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// A 2048-bit key (ring signs nothing smaller), made on first use.
pub fn test_key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        #[allow(clippy::expect_used)] // test support: no key, no test
        RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key generation")
    })
}

/// PKCS#8 PEM of `key`, as a service-account key file carries it.
pub fn pem(key: &RsaPrivateKey) -> String {
    key.to_pkcs8_pem(LineEnding::LF)
        .map(|p| p.to_string())
        .unwrap_or_default()
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": code, "error_description": description})),
    )
        .into_response()
}

fn decode_part(part: &str) -> Result<Value, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| "bad base64url".to_string())?;
    serde_json::from_slice(&bytes).map_err(|_| "not JSON".to_string())
}

fn verify_assertion(
    jwt: &str,
    accounts: &HashMap<String, RsaPublicKey>,
    audience: &str,
) -> Result<(), String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, c, sig] = parts.as_slice() else {
        return Err("not a JWT".into());
    };
    let header = decode_part(h)?;
    if header["alg"] != "RS256" {
        return Err(format!("alg {} is not RS256", header["alg"]));
    }
    let claims = decode_part(c)?;
    let iss = claims["iss"].as_str().unwrap_or_default();
    let key = accounts
        .get(iss)
        .ok_or_else(|| format!("unknown issuer {iss}"))?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| "bad signature encoding".to_string())?;
    let sig = Signature::try_from(sig.as_slice()).map_err(|_| "bad signature".to_string())?;
    VerifyingKey::<Sha256>::new(key.clone())
        .verify(format!("{h}.{c}").as_bytes(), &sig)
        .map_err(|_| "Invalid JWT Signature.".to_string())?;
    if claims["aud"] != audience {
        return Err(format!("audience {} is not {audience}", claims["aud"]));
    }
    if !claims["scope"]
        .as_str()
        .is_some_and(|s| s.split(' ').any(|s| s.contains("/auth/drive")))
    {
        return Err("no Drive scope".into());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap_or(0),
        claims["exp"].as_i64().unwrap_or(0),
    );
    if exp <= now || iat > now + 300 || exp - iat > 3600 {
        return Err(
            "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe".into(),
        );
    }
    Ok(())
}

pub(crate) async fn token(
    State(app): State<App>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let fault = {
        let mut s = app.lock();
        s.count(Route::Token);
        s.take_fault(Route::Token, None)
    };
    if let Some(f) = fault {
        if let Some(r) = super::api::fault_response(&f) {
            return r;
        }
    }
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    let mut s = app.lock();
    match get("grant_type") {
        "urn:ietf:params:oauth:grant-type:jwt-bearer" => {
            if let Err(why) =
                verify_assertion(get("assertion"), &s.service_accounts, &app.token_url)
            {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", &why);
            }
        }
        "refresh_token" => {
            let client = s
                .oauth_clients
                .iter()
                .find(|(id, secret, _)| id == get("client_id") && secret == get("client_secret"));
            match client {
                None => {
                    return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unauthorized")
                }
                Some((_, _, refresh)) if refresh != get("refresh_token") => {
                    return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Bad Request")
                }
                Some(_) => {}
            }
        }
        other => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("Invalid grant_type: {other}"),
            )
        }
    }
    let (token, expires_in) = s.issue_token();
    Json(json!({"access_token": token, "expires_in": expires_in, "token_type": "Bearer"}))
        .into_response()
}
