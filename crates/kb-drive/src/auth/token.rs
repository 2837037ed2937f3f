//! Access tokens: fetched from the token endpoint with either grant, cached, and fetched
//! again shortly before they expire, so requests never go out with a stale one.

use crate::auth::credentials::Credentials;
use crate::auth::jwt::Signer;
use crate::error::{network, DriveError, DriveErrorKind};
use crate::http::{error_from, with_backoff, RetryPolicy};
use kb_core::Secret;
use serde::Deserialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Mutex;

/// Refresh this long before expiry at most (a fifth of the lifetime for short-lived tokens).
const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(300);

enum Grant {
    ServiceAccount {
        signer: Box<Signer>,
        subject: Option<String>,
    },
    RefreshToken {
        client_id: String,
        client_secret: Secret,
        refresh_token: Secret,
    },
}

struct Cached {
    token: Secret,
    refresh_at: Instant,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Secret,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Hands out a valid access token; one refresh at a time, shared by every caller.
pub struct TokenSource {
    http: reqwest::Client,
    grant: Grant,
    token_url: String,
    scope: String,
    retry: RetryPolicy,
    cache: Mutex<Option<Cached>>,
    fetched: AtomicU64,
}

impl TokenSource {
    pub fn new(
        http: reqwest::Client,
        credentials: &Credentials,
        token_url: &str,
        scope: &str,
        subject: Option<&str>,
        retry: RetryPolicy,
    ) -> Result<Self, DriveError> {
        let grant = match credentials {
            Credentials::ServiceAccount(key) => Grant::ServiceAccount {
                signer: Box::new(Signer::new(key)?),
                subject: subject.map(str::to_string),
            },
            Credentials::RefreshToken {
                client_id,
                client_secret,
                refresh_token,
                ..
            } => Grant::RefreshToken {
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
                refresh_token: refresh_token.clone(),
            },
        };
        Ok(Self {
            http,
            grant,
            token_url: token_url.to_string(),
            scope: scope.to_string(),
            retry,
            cache: Mutex::new(None),
            fetched: AtomicU64::new(0),
        })
    }

    /// How many tokens were fetched so far.
    pub fn fetched(&self) -> u64 {
        self.fetched.load(Ordering::Relaxed)
    }

    /// A token valid for a while yet.
    pub async fn token(&self) -> Result<Secret, DriveError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref() {
            if Instant::now() < c.refresh_at {
                return Ok(c.token.clone());
            }
        }
        let started = Instant::now();
        let (token, lifetime) = self.fetch().await?;
        let margin = MAX_REFRESH_MARGIN.min(lifetime / 5);
        *cache = Some(Cached {
            token: token.clone(),
            refresh_at: started + lifetime.saturating_sub(margin),
        });
        self.fetched.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            lifetime_s = lifetime.as_secs(),
            "Drive access token fetched"
        );
        Ok(token)
    }

    /// Forgets `stale` (the API refused it), so the next call fetches a new one.
    pub async fn invalidate(&self, stale: &Secret) {
        let mut cache = self.cache.lock().await;
        if cache.as_ref().is_some_and(|c| &c.token == stale) {
            *cache = None;
        }
    }

    async fn fetch(&self) -> Result<(Secret, Duration), DriveError> {
        let resp: TokenResponse = with_backoff(&self.retry, "OAuth token request", || async {
            let form: Vec<(&str, String)> = match &self.grant {
                Grant::ServiceAccount { signer, subject } => {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map(|d| d.as_secs() as i64)
                        .unwrap_or_default();
                    let assertion =
                        signer.assertion(&self.scope, &self.token_url, subject.as_deref(), now)?;
                    vec![
                        (
                            "grant_type",
                            "urn:ietf:params:oauth:grant-type:jwt-bearer".into(),
                        ),
                        ("assertion", assertion),
                    ]
                }
                Grant::RefreshToken {
                    client_id,
                    client_secret,
                    refresh_token,
                } => vec![
                    ("grant_type", "refresh_token".into()),
                    ("client_id", client_id.clone()),
                    ("client_secret", client_secret.expose().to_string()),
                    ("refresh_token", refresh_token.expose().to_string()),
                ],
            };
            let resp = self
                .http
                .post(&self.token_url)
                .form(&form)
                .send()
                .await
                .map_err(|e| network("cannot reach the OAuth token endpoint", e))?;
            if !resp.status().is_success() {
                return Err(error_from(resp, "the OAuth token endpoint refused", true).await);
            }
            resp.json::<TokenResponse>().await.map_err(|e| {
                DriveError::with(DriveErrorKind::Invalid, "unexpected token response", e)
            })
        })
        .await?;
        if resp.access_token.is_empty() {
            return Err(DriveError::new(
                DriveErrorKind::Auth,
                "the token endpoint returned an empty access token",
            ));
        }
        let lifetime = Duration::from_secs(resp.expires_in.unwrap_or(3600));
        Ok((resp.access_token, lifetime))
    }
}
