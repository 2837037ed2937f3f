//! The Drive v3 calls the watcher makes. Every call names shared drives
//! (`supportsAllDrives`, and `includeItemsFromAllDrives` for listings), asks for exactly the
//! fields it uses, retries quota errors and 5xx with backoff, and fetches a new token when the
//! API refuses the current one.

use crate::auth::{Credentials, TokenSource, DEFAULT_TOKEN_URL};
use crate::error::{network, DriveError, DriveErrorKind};
use crate::http::{error_from, with_backoff, RetryPolicy};
use crate::model::FILE_FIELDS;
use crate::model::{changes_fields, list_fields, ChangeList, File, FileList, StartPageToken};
use kb_core::settings::DriveSettings;
use reqwest::header::CONTENT_LENGTH;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

/// Where and how to talk to Drive.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// e.g. `https://www.googleapis.com/drive/v3`, no trailing slash needed.
    pub api_url: String,
    pub token_url: String,
    pub scope: String,
    pub subject: Option<String>,
    pub page_size: u32,
    pub retry: RetryPolicy,
    pub request_timeout: Duration,
}

impl ClientConfig {
    /// From `[drive]`; an empty `token_url` falls back to the credentials' own endpoint.
    pub fn from_settings(s: &DriveSettings, credentials: &Credentials) -> Self {
        let token_url = if !s.token_url.is_empty() {
            s.token_url.clone()
        } else {
            credentials
                .token_uri()
                .unwrap_or(DEFAULT_TOKEN_URL)
                .to_string()
        };
        Self {
            api_url: s.api_url.trim_end_matches('/').to_string(),
            token_url,
            scope: s.scope.clone(),
            subject: s.subject.clone().filter(|s| !s.is_empty()),
            page_size: s.page_size.clamp(1, 1000),
            retry: RetryPolicy {
                max_retries: s.max_retries,
                min_delay: Duration::from_millis(s.backoff_min_ms.max(1)),
                max_delay: Duration::from_millis(s.backoff_max_ms.max(s.backoff_min_ms)),
            },
            request_timeout: Duration::from_secs(s.request_timeout_secs.max(1)),
        }
    }
}

/// A Drive v3 client; cheap to clone.
#[derive(Clone)]
pub struct DriveClient {
    http: reqwest::Client,
    api: String,
    auth: Arc<TokenSource>,
    retry: RetryPolicy,
    page_size: u32,
}

const ALL_DRIVES: [(&str, &str); 1] = [("supportsAllDrives", "true")];
const ALL_DRIVES_LISTING: [(&str, &str); 2] = [
    ("supportsAllDrives", "true"),
    ("includeItemsFromAllDrives", "true"),
];

impl DriveClient {
    pub fn new(config: ClientConfig, credentials: &Credentials) -> Result<Self, DriveError> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| {
                DriveError::with(DriveErrorKind::Invalid, "cannot build HTTP client", e)
            })?;
        let auth = TokenSource::new(
            http.clone(),
            credentials,
            &config.token_url,
            &config.scope,
            config.subject.as_deref(),
            config.retry.clone(),
        )?;
        Ok(Self {
            http,
            api: config.api_url.trim_end_matches('/').to_string(),
            auth: Arc::new(auth),
            retry: config.retry,
            page_size: config.page_size,
        })
    }

    /// Credentials and endpoints from `[drive]`.
    pub fn from_settings(s: &DriveSettings) -> Result<Self, DriveError> {
        let credentials = Credentials::from_settings(s)?;
        Self::new(ClientConfig::from_settings(s, &credentials), &credentials)
    }

    pub fn tokens(&self) -> &TokenSource {
        &self.auth
    }

    /// One authorized GET, one attempt; callers retry the whole exchange (body included).
    async fn send_once(
        &self,
        what: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<reqwest::Response, DriveError> {
        let token = self.auth.token().await?;
        let resp = self
            .http
            .get(format!("{}/{path}", self.api))
            .bearer_auth(token.expose())
            .query(query)
            .send()
            .await
            .map_err(|e| network(what, e))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        if resp.status().as_u16() == 401 {
            self.auth.invalidate(&token).await;
        }
        Err(error_from(resp, what, false).await)
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        what: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, DriveError> {
        with_backoff(&self.retry, what, || async {
            let resp = self.send_once(what, path, query).await?;
            let bytes = resp.bytes().await.map_err(|e| network(what, e))?;
            serde_json::from_slice(&bytes).map_err(|e| {
                DriveError::with(
                    DriveErrorKind::Invalid,
                    format!("{what}: unexpected answer"),
                    e,
                )
            })
        })
        .await
    }

    /// files.get: the file's metadata.
    pub async fn get_file(&self, file_id: &str) -> Result<File, DriveError> {
        let mut q = vec![("fields", FILE_FIELDS)];
        q.extend(ALL_DRIVES);
        self.get_json("files.get", &format!("files/{file_id}"), &q)
            .await
    }

    /// files.list: one page of the children of a folder that are not in the trash.
    pub async fn list_children(
        &self,
        folder_id: &str,
        page_token: Option<&str>,
    ) -> Result<FileList, DriveError> {
        if !kb_core::ids::is_valid_token(folder_id) {
            // It is quoted into the query: refuse anything that could break out of it.
            return Err(DriveError::new(
                DriveErrorKind::Invalid,
                format!("{folder_id:?} is not a Drive id"),
            ));
        }
        let q = format!("'{folder_id}' in parents and trashed=false");
        let fields = list_fields();
        let size = self.page_size.to_string();
        let mut query = vec![
            ("q", q.as_str()),
            ("fields", fields.as_str()),
            ("pageSize", size.as_str()),
        ];
        query.extend(ALL_DRIVES_LISTING);
        if let Some(t) = page_token {
            query.push(("pageToken", t));
        }
        self.get_json("files.list", "files", &query).await
    }

    /// Every child of a folder, all pages.
    pub async fn list_all_children(&self, folder_id: &str) -> Result<Vec<File>, DriveError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.list_children(folder_id, token.as_deref()).await?;
            out.extend(page.files);
            match page.next_page_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(out),
            }
        }
    }

    /// changes.getStartPageToken: where the changes feed stands now.
    pub async fn start_page_token(&self) -> Result<String, DriveError> {
        let t: StartPageToken = self
            .get_json(
                "changes.getStartPageToken",
                "changes/startPageToken",
                &ALL_DRIVES,
            )
            .await?;
        Ok(t.start_page_token)
    }

    /// changes.list: one page of changes from `page_token`, removals included.
    pub async fn list_changes(&self, page_token: &str) -> Result<ChangeList, DriveError> {
        let fields = changes_fields();
        let size = self.page_size.to_string();
        let mut query = vec![
            ("pageToken", page_token),
            ("fields", fields.as_str()),
            ("pageSize", size.as_str()),
            ("includeRemoved", "true"),
            ("spaces", "drive"),
        ];
        query.extend(ALL_DRIVES_LISTING);
        let page: ChangeList = self.get_json("changes.list", "changes", &query).await?;
        if page.next_page_token.is_none() && page.new_start_page_token.is_none() {
            return Err(DriveError::new(
                DriveErrorKind::Invalid,
                "changes.list answered without a page token",
            ));
        }
        Ok(page)
    }

    /// files.get with `alt=media`: the bytes of a blob file, at most `max_bytes`.
    pub async fn download(&self, file_id: &str, max_bytes: u64) -> Result<Vec<u8>, DriveError> {
        let mut q = vec![("alt", "media")];
        q.extend(ALL_DRIVES);
        self.read_body(
            "files.get(alt=media)",
            &format!("files/{file_id}"),
            &q,
            max_bytes,
        )
        .await
    }

    /// files.export: a Workspace file converted to `media_type`, at most `max_bytes`.
    pub async fn export(
        &self,
        file_id: &str,
        media_type: &str,
        max_bytes: u64,
    ) -> Result<Vec<u8>, DriveError> {
        let q = [("mimeType", media_type)];
        self.read_body(
            "files.export",
            &format!("files/{file_id}/export"),
            &q,
            max_bytes,
        )
        .await
    }

    /// Streams a body, stopping as soon as it passes `max_bytes`.
    async fn read_body(
        &self,
        what: &str,
        path: &str,
        query: &[(&str, &str)],
        max_bytes: u64,
    ) -> Result<Vec<u8>, DriveError> {
        let too_large = |n: u64| {
            DriveError::new(
                DriveErrorKind::TooLarge,
                format!("too_large: {n} bytes > limit {max_bytes}"),
            )
        };
        with_backoff(&self.retry, what, || async {
            let mut resp = self.send_once(what, path, query).await?;
            let announced = resp
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if let Some(n) = announced.filter(|&n| n > max_bytes) {
                return Err(too_large(n));
            }
            let mut body = Vec::with_capacity(announced.unwrap_or(0).min(max_bytes) as usize);
            while let Some(chunk) = resp.chunk().await.map_err(|e| network(what, e))? {
                if (body.len() + chunk.len()) as u64 > max_bytes {
                    return Err(too_large((body.len() + chunk.len()) as u64));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        })
        .await
    }
}
