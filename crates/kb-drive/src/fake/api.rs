//! The Drive v3 endpoints of the fake: files.list (with `q`, `fields`, paging), files.get
//! (metadata and `alt=media`), files.export, changes.getStartPageToken and changes.list, with
//! the API's error bodies, bearer-token checks and shared-drive flags.

use super::fields::Selection;
use super::store::{rfc3339, ChangeKind, Store};
use super::{App, Fault, Route};
use crate::export::{DOCUMENT_MIME, DOCX_MIME, PRESENTATION_MIME, SPREADSHEET_MIME};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::collections::HashMap;

type Params = Query<HashMap<String, String>>;

/// Largest export the API performs.
pub(crate) const EXPORT_LIMIT: usize = 10 * 1024 * 1024;

/// The API's error shape.
pub(crate) fn api_error(status: u16, reason: &str, message: &str) -> Response {
    let domain = if reason.contains("RateLimit") || reason.starts_with("rateLimit") {
        "usageLimits"
    } else {
        "global"
    };
    let body = json!({
        "error": {
            "code": status,
            "message": message,
            "errors": [{ "message": message, "domain": domain, "reason": reason }]
        }
    });
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, Json(body)).into_response()
}

pub(crate) fn fault_response(f: &Fault) -> Option<Response> {
    Some(match f {
        Fault::RateLimit(reason) => api_error(403, reason, "Rate limit exceeded"),
        Fault::TooManyRequests => {
            let mut r = api_error(429, "rateLimitExceeded", "Too many requests");
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("0"));
            r
        }
        Fault::Unavailable => api_error(503, "backendError", "Backend Error"),
        Fault::Forbidden(reason) => api_error(403, reason, "The user does not have access"),
        Fault::Delay(_) => return None,
    })
}

fn flag(p: &HashMap<String, String>, name: &str) -> bool {
    p.get(name).is_some_and(|v| v == "true")
}

fn all_drives(p: &HashMap<String, String>) -> bool {
    flag(p, "supportsAllDrives") && flag(p, "includeItemsFromAllDrives")
}

fn select(v: Value, p: &HashMap<String, String>, default: &str) -> Response {
    let spec = p.get("fields").map(String::as_str).unwrap_or(default);
    match Selection::parse(spec) {
        Ok(sel) => Json(sel.apply(&v)).into_response(),
        Err(e) => api_error(
            400,
            "invalidParameter",
            &format!("Invalid field selection {spec}: {e}"),
        ),
    }
}

/// Counting, the bearer check, then any armed fault. `Err` is the response to send instead.
async fn admit(
    app: &App,
    headers: &HeaderMap,
    route: Route,
    file_id: Option<&str>,
) -> Result<(), Response> {
    let fault = {
        let mut s = app.lock();
        s.count(route);
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !token.is_some_and(|t| s.token_valid(t)) {
            let mut r = api_error(
                401,
                "authError",
                "Request had invalid authentication credentials.",
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"fake\""),
            );
            return Err(r);
        }
        s.take_fault(route, file_id)
    };
    match fault {
        Some(Fault::Delay(d)) => {
            tokio::time::sleep(d).await;
            Ok(())
        }
        Some(f) => Err(fault_response(&f).unwrap_or_else(|| api_error(500, "backendError", "?"))),
        None => Ok(()),
    }
}

/// The subset of the query language the watcher uses: `'<id>' in parents`, `trashed=<bool>`,
/// `mimeType = '<type>'` / `!=`, joined by `and`.
#[derive(Default)]
struct Filter {
    parent: Option<String>,
    trashed: Option<bool>,
    mime_eq: Option<String>,
    mime_ne: Option<String>,
}

fn quoted(s: &str) -> Option<String> {
    let s = s.trim();
    s.strip_prefix('\'')?.strip_suffix('\'').map(str::to_string)
}

fn parse_q(q: &str) -> Result<Filter, String> {
    let mut f = Filter::default();
    for clause in q.split(" and ").map(str::trim).filter(|c| !c.is_empty()) {
        let compact: String = clause.chars().filter(|c| !c.is_whitespace()).collect();
        if let Some(id) = clause.strip_suffix("in parents").and_then(quoted) {
            f.parent = Some(id);
        } else if compact == "trashed=false" || compact == "trashed=true" {
            f.trashed = Some(compact.ends_with("true"));
        } else if let Some(m) = compact.strip_prefix("mimeType!=").and_then(quoted) {
            f.mime_ne = Some(m);
        } else if let Some(m) = compact.strip_prefix("mimeType=").and_then(quoted) {
            f.mime_eq = Some(m);
        } else {
            return Err(clause.to_string());
        }
    }
    Ok(f)
}

pub(crate) async fn files_list(
    State(app): State<App>,
    headers: HeaderMap,
    Query(p): Params,
) -> Response {
    if let Err(r) = admit(&app, &headers, Route::FilesList, None).await {
        return r;
    }
    let filter = match parse_q(p.get("q").map(String::as_str).unwrap_or("")) {
        Ok(f) => f,
        Err(c) => return api_error(400, "invalid", &format!("Invalid Value: {c}")),
    };
    let size = p
        .get("pageSize")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 1000);
    let offset = match p.get("pageToken") {
        None => 0,
        Some(t) => match t.strip_prefix("pg~").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => n,
            None => return api_error(400, "invalid", "Invalid Value"),
        },
    };
    let s = app.lock();
    let shared_ok = all_drives(&p);
    let mut items: Vec<&super::store::FakeFile> = s
        .files
        .values()
        .filter(|f| filter.parent.as_ref().is_none_or(|p| f.parents.contains(p)))
        .filter(|f| filter.trashed.is_none_or(|t| s.effectively_trashed(f) == t))
        .filter(|f| filter.mime_eq.as_ref().is_none_or(|m| &f.mime_type == m))
        .filter(|f| filter.mime_ne.as_ref().is_none_or(|m| &f.mime_type != m))
        .filter(|f| f.drive_id.is_none() || shared_ok)
        .collect();
    items.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    let page: Vec<Value> = items
        .iter()
        .skip(offset)
        .take(size)
        .map(|f| s.file_json(f))
        .collect();
    let mut v = json!({"kind": "drive#fileList", "incompleteSearch": false, "files": page});
    if offset + size < items.len() {
        v["nextPageToken"] = json!(format!("pg~{}", offset + size));
    }
    select(
        v,
        &p,
        "kind,nextPageToken,incompleteSearch,files(kind,id,name,mimeType)",
    )
}

fn not_found(id: &str) -> Response {
    api_error(404, "notFound", &format!("File not found: {id}."))
}

pub(crate) async fn files_get(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(p): Params,
) -> Response {
    let media = p.get("alt").is_some_and(|a| a == "media");
    let route = if media { Route::Media } else { Route::FilesGet };
    if let Err(r) = admit(&app, &headers, route, Some(&id)).await {
        return r;
    }
    let s = app.lock();
    let Some(f) = s.files.get(&id) else {
        return not_found(&id);
    };
    if f.drive_id.is_some() && !flag(&p, "supportsAllDrives") {
        return not_found(&id);
    }
    if !media {
        return select(s.file_json(f), &p, "kind,id,name,mimeType");
    }
    if f.is_folder() || f.is_google_apps() {
        return api_error(
            403,
            "fileNotDownloadable",
            "Only files with binary content can be downloaded. Use Export with Docs Editors files.",
        );
    }
    if !f.downloadable {
        return api_error(
            403,
            "cannotDownloadFile",
            "The user has not granted the app read access to the file.",
        );
    }
    (
        [(header::CONTENT_TYPE, f.mime_type.clone())],
        f.content.clone(),
    )
        .into_response()
}

/// What the real conversions produce, closely enough: Docs' text/plain starts with a BOM.
fn convert(source_mime: &str, target: &str, content: &[u8]) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(content);
    match (source_mime, target) {
        (DOCUMENT_MIME, "text/plain") => Some([b"\xEF\xBB\xBF".as_slice(), content].concat()),
        (DOCUMENT_MIME, "text/markdown") | (SPREADSHEET_MIME, "text/csv") => Some(content.to_vec()),
        (PRESENTATION_MIME, "text/plain") => Some(content.to_vec()),
        (DOCUMENT_MIME, "text/html") => {
            Some(format!("<html><body><p>{text}</p></body></html>").into_bytes())
        }
        // A stand-in with the zip magic and Word's part names; not a real document.
        (DOCUMENT_MIME, DOCX_MIME) => Some(
            [
                b"PK\x03\x04".as_slice(),
                b"[Content_Types].xml word/document.xml ",
                content,
            ]
            .concat(),
        ),
        _ => None,
    }
}

pub(crate) async fn files_export(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(p): Params,
) -> Response {
    if let Err(r) = admit(&app, &headers, Route::Export, Some(&id)).await {
        return r;
    }
    let Some(target) = p.get("mimeType") else {
        return api_error(400, "required", "Required parameter: mimeType");
    };
    let s = app.lock();
    let Some(f) = s.files.get(&id) else {
        return not_found(&id);
    };
    if !f.is_google_apps() || f.is_folder() {
        return api_error(
            403,
            "fileNotExportable",
            "Export only supports Docs Editors files.",
        );
    }
    let Some(bytes) = convert(&f.mime_type, target, &f.content) else {
        return api_error(
            400,
            "badRequest",
            "The requested conversion is not supported.",
        );
    };
    if bytes.len() > EXPORT_LIMIT {
        return api_error(
            403,
            "exportSizeLimitExceeded",
            "This file is too large to be exported.",
        );
    }
    ([(header::CONTENT_TYPE, target.clone())], bytes).into_response()
}

pub(crate) async fn start_page_token(
    State(app): State<App>,
    headers: HeaderMap,
    Query(_p): Params,
) -> Response {
    if let Err(r) = admit(&app, &headers, Route::StartPageToken, None).await {
        return r;
    }
    let s = app.lock();
    Json(json!({"kind": "drive#startPageToken", "startPageToken": s.next_seq.to_string()}))
        .into_response()
}

fn change_json(s: &Store, seq_kind: &ChangeKind, time_ms: i64) -> Value {
    match seq_kind {
        ChangeKind::File { file_id, removed } => {
            let file = s.files.get(file_id);
            let mut v = json!({
                "kind": "drive#change",
                "changeType": "file",
                "time": rfc3339(time_ms),
                "removed": *removed || file.is_none(),
                "fileId": file_id,
            });
            if let Some(f) = file.filter(|_| !removed) {
                v["file"] = s.file_json(f);
                if let Some(d) = &f.drive_id {
                    v["driveId"] = json!(d);
                }
            }
            v
        }
        ChangeKind::Drive { drive_id } => json!({
            "kind": "drive#change",
            "changeType": "drive",
            "time": rfc3339(time_ms),
            "removed": false,
            "driveId": drive_id,
            "drive": {"kind": "drive#drive", "id": drive_id,
                      "name": s.files.get(drive_id).map(|f| f.name.clone()).unwrap_or_default()},
        }),
    }
}

pub(crate) async fn changes_list(
    State(app): State<App>,
    headers: HeaderMap,
    Query(p): Params,
) -> Response {
    if let Err(r) = admit(&app, &headers, Route::Changes, None).await {
        return r;
    }
    let Some(token) = p.get("pageToken") else {
        return api_error(400, "required", "Required parameter: pageToken");
    };
    let s = app.lock();
    let Some(from) = token.parse::<u64>().ok().filter(|t| *t <= s.next_seq) else {
        return api_error(400, "invalid", &format!("Invalid Value: pageToken {token}"));
    };
    let size = p
        .get("pageSize")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 1000);
    let include_removed = p.get("includeRemoved").is_none_or(|v| v != "false");
    let shared_ok = all_drives(&p);
    // The feed holds the latest change of each item only.
    let mut latest: HashMap<&str, u64> = HashMap::new();
    for c in &s.changes {
        if let ChangeKind::File { file_id, .. } = &c.kind {
            latest.insert(file_id, c.seq);
        }
    }
    let visible: Vec<_> = s
        .changes
        .iter()
        .filter(|c| c.seq >= from)
        .filter(|c| match &c.kind {
            ChangeKind::File { file_id, removed } => {
                let in_shared = s.files.get(file_id).is_some_and(|f| f.drive_id.is_some());
                latest.get(file_id.as_str()) == Some(&c.seq)
                    && (include_removed || !removed)
                    && (shared_ok || !in_shared)
            }
            ChangeKind::Drive { .. } => shared_ok,
        })
        .collect();
    let page: Vec<Value> = visible
        .iter()
        .take(size)
        .map(|c| change_json(&s, &c.kind, c.time_ms))
        .collect();
    let mut v = json!({"kind": "drive#changeList", "changes": page});
    match visible.get(size) {
        Some(next) => v["nextPageToken"] = json!(next.seq.to_string()),
        None => v["newStartPageToken"] = json!(s.next_seq.to_string()),
    }
    select(
        v,
        &p,
        "kind,nextPageToken,newStartPageToken,changes(kind,changeType,time,removed,fileId,driveId,file(kind,id,name,mimeType))",
    )
}
