//! Where credentials come from: a service-account key, an `authorized_user` JSON (what
//! installed-app tools write), or the client id / secret / refresh token given one by one.

use crate::error::{DriveError, DriveErrorKind};
use kb_core::settings::DriveSettings;
use kb_core::Secret;
use serde::Deserialize;
use std::path::Path;

/// Google's OAuth token endpoint, used unless the settings or the key file name another.
pub const DEFAULT_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";

/// How to obtain access tokens. `Debug` shows no secret.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// JWT bearer grant signed with the service account's RSA key.
    ServiceAccount(ServiceAccountKey),
    /// OAuth installed-app flow: exchanges a long-lived refresh token.
    RefreshToken {
        client_id: String,
        client_secret: Secret,
        refresh_token: Secret,
        token_uri: Option<String>,
    },
}

/// The fields of a service-account key file that signing needs.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceAccountKey {
    pub client_email: String,
    /// PEM, PKCS#8 (as Google issues it) or PKCS#1.
    pub private_key: Secret,
    #[serde(default)]
    pub private_key_id: String,
    #[serde(default)]
    pub token_uri: Option<String>,
}

#[derive(Deserialize)]
struct AuthorizedUser {
    client_id: String,
    client_secret: Secret,
    refresh_token: Secret,
    #[serde(default)]
    token_uri: Option<String>,
}

#[derive(Deserialize)]
struct Kind {
    #[serde(rename = "type")]
    kind: String,
}

fn auth_error(msg: impl Into<String>) -> DriveError {
    DriveError::new(DriveErrorKind::Auth, msg)
}

impl Credentials {
    /// A key file's JSON: `"type": "service_account"` or `"authorized_user"`. Errors never
    /// quote the JSON (it holds the secret).
    pub fn from_json(json: &str) -> Result<Self, DriveError> {
        let kind: Kind = serde_json::from_str(json)
            .map_err(|e| auth_error(format!("credentials are not a JSON key file ({e})")))?;
        match kind.kind.as_str() {
            "service_account" => {
                let key: ServiceAccountKey = serde_json::from_str(json).map_err(|e| {
                    auth_error(format!("service-account key is missing fields ({e})"))
                })?;
                Ok(Self::ServiceAccount(key))
            }
            "authorized_user" => {
                let u: AuthorizedUser = serde_json::from_str(json).map_err(|e| {
                    auth_error(format!("authorized_user credentials are incomplete ({e})"))
                })?;
                Ok(Self::RefreshToken {
                    client_id: u.client_id,
                    client_secret: u.client_secret,
                    refresh_token: u.refresh_token,
                    token_uri: u.token_uri,
                })
            }
            other => Err(auth_error(format!(
                "credentials of type {other:?} are not supported (service_account, authorized_user)"
            ))),
        }
    }

    pub fn from_file(path: &Path) -> Result<Self, DriveError> {
        let json = std::fs::read_to_string(path).map_err(|e| {
            DriveError::with(
                DriveErrorKind::Auth,
                format!("cannot read credentials file {}", path.display()),
                e,
            )
        })?;
        Self::from_json(&json)
    }

    /// From the `[drive]` settings, first match wins: the client id / secret / refresh token
    /// trio, `credentials_json`, `credentials_file`, then `GOOGLE_APPLICATION_CREDENTIALS`.
    pub fn from_settings(s: &DriveSettings) -> Result<Self, DriveError> {
        if !s.refresh_token.is_empty() {
            if s.client_id.is_empty() || s.client_secret.is_empty() {
                return Err(auth_error(
                    "drive.refresh_token needs drive.client_id and drive.client_secret",
                ));
            }
            return Ok(Self::RefreshToken {
                client_id: s.client_id.clone(),
                client_secret: s.client_secret.clone(),
                refresh_token: s.refresh_token.clone(),
                token_uri: None,
            });
        }
        if !s.credentials_json.is_empty() {
            return Self::from_json(s.credentials_json.expose());
        }
        if let Some(path) = &s.credentials_file {
            return Self::from_file(path);
        }
        match std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS") {
            Some(path) if !path.is_empty() => Self::from_file(Path::new(&path)),
            _ => Err(auth_error(
                "no Drive credentials: set drive.credentials_file, drive.credentials_json, \
                 drive.client_id/client_secret/refresh_token or GOOGLE_APPLICATION_CREDENTIALS",
            )),
        }
    }

    /// The token endpoint the credentials name, if any.
    pub fn token_uri(&self) -> Option<&str> {
        match self {
            Self::ServiceAccount(k) => k.token_uri.as_deref(),
            Self::RefreshToken { token_uri, .. } => token_uri.as_deref(),
        }
        .filter(|u| !u.is_empty())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn both_key_file_types_parse_and_debug_hides_secrets() {
        let sa = Credentials::from_json(
            r#"{"type":"service_account","client_email":"a@b.iam","private_key":"-----BEGIN PRIVATE KEY-----\nSECRETKEY\n-----END PRIVATE KEY-----\n","private_key_id":"k1","token_uri":"http://t/token"}"#,
        )
        .unwrap();
        assert!(matches!(sa, Credentials::ServiceAccount(ref k) if k.client_email == "a@b.iam"));
        assert_eq!(sa.token_uri(), Some("http://t/token"));
        assert!(!format!("{sa:?}").contains("SECRETKEY"));

        let user = Credentials::from_json(
            r#"{"type":"authorized_user","client_id":"cid","client_secret":"csecret","refresh_token":"rtoken"}"#,
        )
        .unwrap();
        let dbg = format!("{user:?}");
        assert!(dbg.contains("cid") && !dbg.contains("csecret") && !dbg.contains("rtoken"));
    }

    #[test]
    fn bad_credentials_are_auth_errors_that_do_not_echo_the_json() {
        let err =
            Credentials::from_json(r#"{"type":"external_account","secret":"zzz"}"#).unwrap_err();
        assert_eq!(err.kind, DriveErrorKind::Auth);
        assert!(!err.to_string().contains("zzz"));
        let err = Credentials::from_json("not json").unwrap_err();
        assert_eq!(err.kind, DriveErrorKind::Auth);
    }

    #[test]
    fn settings_trio_wins_and_partial_trio_is_refused() {
        let mut s = DriveSettings {
            refresh_token: Secret::new("r"),
            ..Default::default()
        };
        assert_eq!(
            Credentials::from_settings(&s).unwrap_err().kind,
            DriveErrorKind::Auth
        );
        s.client_id = "c".into();
        s.client_secret = Secret::new("s");
        assert!(matches!(
            Credentials::from_settings(&s).unwrap(),
            Credentials::RefreshToken { .. }
        ));
    }
}
