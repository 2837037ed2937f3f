//! The client against the local fake Drive: both grants (the JWT's RS256 signature checked
//! with the test key), token reuse and early refresh, paging, the changes feed, downloads,
//! exports, size limits, shared drives, error bodies and backoff on quota errors.

#![allow(clippy::unwrap_used)] // tests may unwrap

use kb_core::Secret;
use kb_drive::fake::{FakeDrive, Fault, Route};
use kb_drive::{
    ClientConfig, Credentials, DriveClient, DriveErrorExt as _, DriveErrorKind, RetryPolicy,
};
use std::time::Duration;

fn config(fake: &FakeDrive, page_size: u32) -> ClientConfig {
    ClientConfig {
        api_url: fake.api_url(),
        token_url: fake.token_url(),
        scope: "https://www.googleapis.com/auth/drive.readonly".into(),
        subject: None,
        page_size,
        retry: RetryPolicy {
            max_retries: 3,
            min_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(40),
        },
        request_timeout: Duration::from_secs(10),
    }
}

fn service_account_client(fake: &FakeDrive, page_size: u32) -> DriveClient {
    let json = fake.service_account_json("watcher@kb-test.iam.gserviceaccount.com");
    let creds = Credentials::from_json(&json).unwrap();
    DriveClient::new(config(fake, page_size), &creds).unwrap()
}

#[tokio::test]
async fn service_account_jwt_is_accepted_and_its_token_reused() {
    let fake = FakeDrive::start().await.unwrap();
    let root = fake.add_folder(None, "Inbox");
    fake.add_file(&root, "a.txt", "text/plain", b"alpha");
    let client = service_account_client(&fake, 100);

    let files = client.list_all_children(&root).await.unwrap();
    assert_eq!(files.len(), 1);
    client.get_file(&root).await.unwrap();
    client.start_page_token().await.unwrap();
    assert_eq!(fake.tokens_issued(), 1, "one token serves every call");
    assert_eq!(client.tokens().fetched(), 1);
}

#[tokio::test]
async fn a_key_the_server_does_not_know_is_an_auth_error() {
    let fake = FakeDrive::start().await.unwrap();
    let other = FakeDrive::start().await.unwrap();
    // Registered with `other`, presented to `fake`: the issuer is unknown there.
    let json = other.service_account_json("stranger@x.iam.gserviceaccount.com");
    let creds = Credentials::from_json(&json).unwrap();
    let client = DriveClient::new(config(&fake, 100), &creds).unwrap();
    let err = client.start_page_token().await.unwrap_err();
    assert_eq!(err.kind, DriveErrorKind::Auth, "{err}");
    assert_eq!(err.code(), Some("invalid_grant"));
    assert!(
        fake.requests(Route::Token) <= 2,
        "auth errors are not retried at length"
    );
}

#[tokio::test]
async fn an_assertion_signed_with_another_key_is_refused() {
    let fake = FakeDrive::start().await.unwrap();
    let email = "watcher@kb-test.iam.gserviceaccount.com";
    let mut key: serde_json::Value =
        serde_json::from_str(&fake.service_account_json(email)).unwrap();
    let impostor = tokio::task::spawn_blocking(|| {
        kb_drive::fake::RsaPrivateKey::new(&mut rsa_rng(), 2048).unwrap()
    })
    .await
    .unwrap();
    key["private_key"] = kb_drive::fake::pem(&impostor).into();
    let creds = Credentials::from_json(&key.to_string()).unwrap();
    let client = DriveClient::new(config(&fake, 100), &creds).unwrap();
    let err = client.start_page_token().await.unwrap_err();
    assert_eq!(err.kind, DriveErrorKind::Auth);
    assert!(err.to_string().contains("Invalid JWT Signature"), "{err}");
    assert_eq!(fake.tokens_issued(), 0);
}

fn rsa_rng() -> kb_drive::fake::OsRng {
    kb_drive::fake::OsRng
}

#[tokio::test]
async fn refresh_token_grant_works_and_a_bad_refresh_token_is_refused() {
    let fake = FakeDrive::start().await.unwrap();
    fake.register_oauth_client("cid.apps", "csecret", "1//refresh");
    let good = Credentials::RefreshToken {
        client_id: "cid.apps".into(),
        client_secret: Secret::new("csecret"),
        refresh_token: Secret::new("1//refresh"),
        token_uri: None,
    };
    let client = DriveClient::new(config(&fake, 100), &good).unwrap();
    client.start_page_token().await.unwrap();
    assert_eq!(fake.tokens_issued(), 1);

    let bad = Credentials::RefreshToken {
        client_id: "cid.apps".into(),
        client_secret: Secret::new("csecret"),
        refresh_token: Secret::new("1//revoked"),
        token_uri: None,
    };
    let client = DriveClient::new(config(&fake, 100), &bad).unwrap();
    let err = client.start_page_token().await.unwrap_err();
    assert_eq!(err.kind, DriveErrorKind::Auth);
    assert!(!err.to_string().contains("1//revoked"));
}

#[tokio::test]
async fn tokens_are_refreshed_before_expiry_and_after_a_401() {
    let fake = FakeDrive::start().await.unwrap();
    fake.set_token_lifetime(Duration::from_secs(2));
    let client = service_account_client(&fake, 100);
    client.start_page_token().await.unwrap();
    assert_eq!(fake.tokens_issued(), 1);
    // 1.7 s in, the first token is still valid for 0.3 s: it is replaced already.
    tokio::time::sleep(Duration::from_millis(1700)).await;
    client.start_page_token().await.unwrap();
    assert_eq!(fake.tokens_issued(), 2);

    fake.set_token_lifetime(Duration::from_secs(3600));
    fake.revoke_tokens();
    client.start_page_token().await.unwrap();
    assert_eq!(fake.tokens_issued(), 3, "a refused token is replaced");
}

#[tokio::test]
async fn listing_pages_through_250_files_with_the_fields_asked_for() {
    let fake = FakeDrive::start().await.unwrap();
    let root = fake.add_folder(None, "Big");
    for i in 0..250 {
        fake.add_file(
            &root,
            &format!("f{i:03}.md"),
            "text/markdown",
            format!("# {i}").as_bytes(),
        );
    }
    let sub = fake.add_folder(Some(&root), "Sub");
    let trashed = fake.add_file(&root, "gone.md", "text/markdown", b"x");
    fake.trash(&trashed);
    let client = service_account_client(&fake, 100);

    let files = client.list_all_children(&root).await.unwrap();
    assert_eq!(
        files.len(),
        251,
        "250 files and a folder, not the trashed file"
    );
    assert_eq!(fake.requests(Route::FilesList), 3);
    let f7 = files.iter().find(|f| f.name == "f007.md").unwrap();
    assert_eq!(f7.size, Some(3));
    assert_eq!(f7.parents, std::slice::from_ref(&root));
    assert!(f7.md5_checksum.as_deref().is_some_and(|m| m.len() == 32));
    assert!(f7.modified_unix_ms() > 0);
    assert_eq!(
        f7.web_view_link.as_deref(),
        Some(
            format!(
                "https://drive.google.com/file/d/{}/view?usp=drivesdk",
                f7.id
            )
            .as_str()
        )
    );
    let folder = files.iter().find(|f| f.id == sub && f.is_folder()).unwrap();
    assert_eq!(
        folder.link(),
        format!("https://drive.google.com/drive/folders/{sub}")
    );
}

#[tokio::test]
async fn the_changes_feed_pages_and_reports_edits_trash_and_removals() {
    let fake = FakeDrive::start().await.unwrap();
    let root = fake.add_folder(None, "Inbox");
    let a = fake.add_file(&root, "a.txt", "text/plain", b"one");
    let b = fake.add_file(&root, "b.txt", "text/plain", b"two");
    let client = service_account_client(&fake, 2);
    let start = client.start_page_token().await.unwrap();

    fake.set_content(&a, b"one, edited");
    fake.trash(&b);
    let c = fake.add_file(&root, "c.txt", "text/plain", b"three");
    fake.delete(&c);
    fake.rename(&a, "a2.txt");

    let mut changes = Vec::new();
    let mut token = start;
    let mut pages = 0;
    loop {
        let page = client.list_changes(&token).await.unwrap();
        pages += 1;
        changes.extend(page.changes);
        match (page.next_page_token, page.new_start_page_token) {
            (Some(next), _) => token = next,
            (None, Some(_)) => break,
            (None, None) => unreachable!("the client refuses such pages"),
        }
    }
    assert_eq!(pages, 2, "3 coalesced changes at 2 per page");
    let by_id = |id: &str| {
        changes
            .iter()
            .find(|c| c.file_id.as_deref() == Some(id))
            .unwrap()
    };
    assert!(by_id(&b).file.as_ref().unwrap().trashed);
    assert!(by_id(&c).removed && by_id(&c).file.is_none());
    let a_file = by_id(&a).file.as_ref().unwrap();
    assert_eq!(a_file.name, "a2.txt", "the latest state of a file");
    assert_eq!(a_file.size, Some(11));
    assert_eq!(
        a_file.link(),
        format!("https://drive.google.com/file/d/{a}/view?usp=drivesdk")
    );
}

#[tokio::test]
async fn downloads_exports_and_their_limits() {
    let fake = FakeDrive::start().await.unwrap();
    let root = fake.add_folder(None, "Inbox");
    let blob = fake.add_file(&root, "big.bin", "application/octet-stream", &[7u8; 5000]);
    let doc = fake.add_doc(&root, "Plan", "Q3 plan");
    let sheet = fake.add_sheet(&root, "Budget", "a,b\n1,2\n");
    let client = service_account_client(&fake, 100);

    assert_eq!(client.download(&blob, 5000).await.unwrap().len(), 5000);
    let err = client.download(&blob, 4999).await.unwrap_err();
    assert_eq!(err.kind, DriveErrorKind::TooLarge);

    assert_eq!(
        client.export(&doc, "text/plain", 1000).await.unwrap(),
        b"\xEF\xBB\xBFQ3 plan"
    );
    assert_eq!(
        client.export(&sheet, "text/csv", 1000).await.unwrap(),
        b"a,b\n1,2\n"
    );
    let err = client
        .export(&sheet, "application/x-nope", 1000)
        .await
        .unwrap_err();
    assert_eq!(err.kind, DriveErrorKind::Refused);

    let err = client.download(&doc, 1000).await.unwrap_err();
    assert_eq!(err.kind, DriveErrorKind::Refused);
    assert_eq!(err.code(), Some("fileNotDownloadable"));

    fake.set_downloadable(&blob, false);
    let err = client.download(&blob, 10_000).await.unwrap_err();
    assert_eq!(err.code(), Some("cannotDownloadFile"));
    assert_eq!(
        fake.requests(Route::Media),
        4,
        "permanent errors are not retried"
    );

    let err = client.get_file("1NoSuchFile").await.unwrap_err();
    assert_eq!(err.kind, DriveErrorKind::NotFound);
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn quota_errors_back_off_and_succeed_and_outages_give_up_as_transient() {
    let fake = FakeDrive::start().await.unwrap();
    let root = fake.add_folder(None, "Inbox");
    let client = service_account_client(&fake, 100);
    fake.fail(
        Route::FilesList,
        None,
        Fault::RateLimit("userRateLimitExceeded"),
        1,
    );
    fake.fail(
        Route::FilesList,
        None,
        Fault::RateLimit("rateLimitExceeded"),
        1,
    );
    fake.fail(Route::FilesList, None, Fault::TooManyRequests, 1);
    client.list_all_children(&root).await.unwrap();
    assert_eq!(fake.requests(Route::FilesList), 4);

    fake.fail(Route::Changes, None, Fault::Unavailable, usize::MAX);
    let err = client.list_changes("1000").await.unwrap_err();
    assert_eq!(err.kind, DriveErrorKind::Transient);
    assert_eq!(fake.requests(Route::Changes), 4, "1 try + 3 retries");

    fake.clear_faults();
    fake.fail(
        Route::FilesGet,
        None,
        Fault::RateLimit("userRateLimitExceeded"),
        usize::MAX,
    );
    let err = client.get_file(&root).await.unwrap_err();
    assert!(err.is_rate_limited() && err.is_transient(), "{err}");
}

#[tokio::test]
async fn shared_drive_items_are_listed_fetched_and_in_the_feed() {
    let fake = FakeDrive::start().await.unwrap();
    let drive = fake.add_shared_drive("Team");
    let client = service_account_client(&fake, 100);
    let start = client.start_page_token().await.unwrap();
    let folder = fake.add_folder(Some(&drive), "Specs");
    let spec = fake.add_file(&folder, "spec.md", "text/markdown", b"# Spec");

    let files = client.list_all_children(&folder).await.unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].drive_id.as_deref(), Some(drive.as_str()));
    assert_eq!(client.download(&spec, 100).await.unwrap(), b"# Spec");
    let page = client.list_changes(&start).await.unwrap();
    assert!(page
        .changes
        .iter()
        .any(|c| c.file_id.as_deref() == Some(spec.as_str())));
}

#[tokio::test]
async fn ids_that_would_break_the_query_are_refused() {
    let fake = FakeDrive::start().await.unwrap();
    let client = service_account_client(&fake, 100);
    let err = client
        .list_children("x' or name contains '", None)
        .await
        .unwrap_err();
    assert_eq!(err.kind, DriveErrorKind::Invalid);
    assert_eq!(fake.requests(Route::FilesList), 0);
}
