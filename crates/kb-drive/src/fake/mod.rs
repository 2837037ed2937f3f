//! A local fake of Google Drive for tests (feature `fake`): an axum server on 127.0.0.1 that
//! speaks the v3 wire format the client uses (files.list with `q`/`fields`/paging,
//! files.get with `alt=media`, files.export, changes.getStartPageToken / changes.list with
//! coalesced changes and page tokens, shared drives, the API's error bodies) and the OAuth
//! token endpoint (both grants, the JWT signature verified with the test's public key).
//! Tests change the drive through [`FakeDrive`] and arm faults (quota errors, outages,
//! delays) per route and file.

mod api;
mod fields;
mod oauth;
mod store;

pub use fields::Selection;
pub use oauth::{pem, test_key};
pub use rsa::rand_core::OsRng;
pub use rsa::RsaPrivateKey;

use axum::routing::{get, post};
use axum::Router;
use rsa::RsaPublicKey;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use store::{FaultRule, Store};
use tokio::task::JoinHandle;

use crate::export::{DOCUMENT_MIME, PRESENTATION_MIME, SPREADSHEET_MIME};
use crate::model::FOLDER_MIME;

/// The endpoints, for counting requests and aiming faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    Token,
    FilesList,
    FilesGet,
    Media,
    Export,
    StartPageToken,
    Changes,
}

/// A failure the fake answers with instead of the real answer.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 403 with this reason (`userRateLimitExceeded`, `rateLimitExceeded`).
    RateLimit(&'static str),
    /// 429 with `Retry-After: 0`.
    TooManyRequests,
    /// 503 `backendError`.
    Unavailable,
    /// 403 with this reason (e.g. `cannotDownloadFile`): permanent.
    Forbidden(&'static str),
    /// Answers normally after this delay.
    Delay(Duration),
}

#[derive(Clone)]
pub(crate) struct App {
    store: Arc<Mutex<Store>>,
    token_url: String,
}

impl App {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Store> {
        // A panicking handler leaves consistent data behind (every edit is one step).
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running fake; stops when dropped.
pub struct FakeDrive {
    addr: SocketAddr,
    app: App,
    task: JoinHandle<()>,
}

impl Drop for FakeDrive {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeDrive {
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = App {
            store: Arc::new(Mutex::new(Store::new())),
            token_url: format!("http://{addr}/token"),
        };
        let router = Router::new()
            .route("/token", post(oauth::token))
            .route("/drive/v3/files", get(api::files_list))
            .route("/drive/v3/files/{id}", get(api::files_get))
            .route("/drive/v3/files/{id}/export", get(api::files_export))
            .route(
                "/drive/v3/changes/startPageToken",
                get(api::start_page_token),
            )
            .route("/drive/v3/changes", get(api::changes_list))
            .with_state(app.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "fake Drive server stopped");
            }
        });
        Ok(Self { addr, app, task })
    }

    pub fn api_url(&self) -> String {
        format!("http://{}/drive/v3", self.addr)
    }

    pub fn token_url(&self) -> String {
        self.app.token_url.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.app.lock()
    }

    /// Registers a service account with the process's test key and returns its key file JSON
    /// (its `token_uri` points at this fake).
    pub fn service_account_json(&self, client_email: &str) -> String {
        let key = test_key();
        self.lock()
            .service_accounts
            .insert(client_email.to_string(), RsaPublicKey::from(key));
        json!({
            "type": "service_account",
            "project_id": "fake-project",
            "private_key_id": "fake-key-1",
            "private_key": pem(key),
            "client_email": client_email,
            "client_id": "100000000000000000001",
            "token_uri": self.token_url(),
        })
        .to_string()
    }

    /// Registers an installed-app client and the refresh token it accepts.
    pub fn register_oauth_client(&self, client_id: &str, secret: &str, refresh_token: &str) {
        self.lock().oauth_clients.push((
            client_id.to_string(),
            secret.to_string(),
            refresh_token.to_string(),
        ));
    }

    /// Lifetime of access tokens issued from now on.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.lock().token_lifetime = lifetime;
    }

    /// A folder in My Drive (`parent` None: a top-level folder).
    pub fn add_folder(&self, parent: Option<&str>, name: &str) -> String {
        self.lock().create(parent, name, FOLDER_MIME, Vec::new())
    }

    pub fn add_file(&self, parent: &str, name: &str, mime_type: &str, content: &[u8]) -> String {
        self.lock()
            .create(Some(parent), name, mime_type, content.to_vec())
    }

    /// A Google Doc whose text is `text` (exported per the requested type).
    pub fn add_doc(&self, parent: &str, name: &str, text: &str) -> String {
        self.lock()
            .create(Some(parent), name, DOCUMENT_MIME, text.as_bytes().to_vec())
    }

    /// A Google Sheet whose CSV export is `csv`.
    pub fn add_sheet(&self, parent: &str, name: &str, csv: &str) -> String {
        self.lock().create(
            Some(parent),
            name,
            SPREADSHEET_MIME,
            csv.as_bytes().to_vec(),
        )
    }

    pub fn add_slides(&self, parent: &str, name: &str, text: &str) -> String {
        self.lock().create(
            Some(parent),
            name,
            PRESENTATION_MIME,
            text.as_bytes().to_vec(),
        )
    }

    /// A shared drive; its id is also the id of its root folder.
    pub fn add_shared_drive(&self, name: &str) -> String {
        self.lock().create_shared_drive(name)
    }

    pub fn set_content(&self, id: &str, content: &[u8]) {
        self.lock()
            .modify(id, true, |f| f.content = content.to_vec());
    }

    /// A new revision with the same bytes (e.g. re-uploaded unchanged).
    pub fn touch(&self, id: &str) {
        self.lock().modify(id, true, |_| {});
    }

    pub fn rename(&self, id: &str, name: &str) {
        self.lock().modify(id, false, |f| f.name = name.to_string());
    }

    /// Moves an item to another folder (only the item itself shows up in the changes feed).
    pub fn move_to(&self, id: &str, new_parent: &str) {
        self.lock()
            .modify(id, false, |f| f.parents = vec![new_parent.to_string()]);
    }

    pub fn trash(&self, id: &str) {
        self.lock().modify(id, false, |f| f.trashed = true);
    }

    pub fn untrash(&self, id: &str) {
        self.lock().modify(id, false, |f| f.trashed = false);
    }

    /// Deleted for good (a folder with everything in it): `removed` in the changes feed.
    pub fn delete(&self, id: &str) {
        self.lock().delete(id);
    }

    /// Whether `alt=media` is allowed (the owner can forbid downloads).
    pub fn set_downloadable(&self, id: &str, downloadable: bool) {
        self.lock()
            .modify(id, false, |f| f.downloadable = downloadable);
    }

    /// The `webViewLink` the fake answers for an item (`None`: none at all). Items get the
    /// API's form for their type when created; the link is no change in the changes feed.
    pub fn set_web_view_link(&self, id: &str, link: Option<&str>) {
        if let Some(f) = self.lock().files.get_mut(id) {
            f.web_view_link = link.map(str::to_string);
        }
    }

    /// Makes the edits of `edit` without a trace in the changes feed (as drift the feed
    /// missed): only a full listing sees them.
    pub fn without_feed(&self, edit: impl FnOnce(&Self)) {
        self.lock().feed_off = true;
        edit(self);
        self.lock().feed_off = false;
    }

    /// Answers the next `times` requests of `route` (for `file_id` only, when given) with
    /// `fault`.
    pub fn fail(&self, route: Route, file_id: Option<&str>, fault: Fault, times: usize) {
        self.lock().faults.push(FaultRule {
            route,
            file_id: file_id.map(str::to_string),
            fault,
            remaining: times,
        });
    }

    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Requests received on `route` so far (refused ones included).
    pub fn requests(&self, route: Route) -> usize {
        self.lock().counts.get(&route).copied().unwrap_or(0)
    }

    /// Invalidates every access token issued so far (as a revoked grant would).
    pub fn revoke_tokens(&self) {
        self.lock().tokens.clear();
    }

    pub fn tokens_issued(&self) -> usize {
        self.lock().tokens_issued
    }

    /// The current bytes of a file (tests compare published bodies with them).
    pub fn content(&self, id: &str) -> Option<Vec<u8>> {
        self.lock().files.get(id).map(|f| f.content.clone())
    }
}
