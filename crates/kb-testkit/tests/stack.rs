//! stack(): the shared test stack is up, cached, and its paths are the script's.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

#[tokio::test]
async fn stack_is_started_once_and_reports_its_paths() {
    let first = kb_testkit::stack().await.unwrap();
    let second = kb_testkit::stack().await.unwrap();
    assert!(std::ptr::eq(first, second), "one Stack per process");

    assert!(first.stack_dir().join("pkgs").is_dir());
    assert_eq!(first.model_dir(), first.stack_dir().join("model"));
    assert!(first.nats_server_bin().is_file());
    assert!(first.postgres_url().ends_with("/kb"));

    // The shared servers answer.
    let client = async_nats::connect(first.nats_url()).await.unwrap();
    client.flush().await.unwrap();
}
