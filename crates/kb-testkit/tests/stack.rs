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

/// The stack's Postgres programs are where the script says, and `psql` there works against the
/// shared server (the end-to-end tests run the seed's SQL with it).
#[tokio::test]
async fn postgres_programs_are_found_where_the_stack_put_them() {
    let stack = kb_testkit::stack().await.unwrap();
    let bin = stack.pg_bin_dir().unwrap();
    let out = std::process::Command::new(bin.join("psql"))
        .args([
            "-X",
            "-A",
            "-t",
            "-c",
            "select 1",
            "-d",
            stack.postgres_url(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
}

/// As root, a checkout the Postgres service user cannot enter (under /root, or a `mktemp -d`
/// folder) keeps Postgres' programs outside it, and `stack env` says where: the one answer the
/// test kit and the benchmarks use, instead of each looking under the checkout.
#[test]
fn a_checkout_out_of_reach_of_the_postgres_user_gets_its_programs_elsewhere() {
    if !rustix::process::geteuid().is_root() {
        return; // only root runs Postgres as another user
    }
    let hidden = tempfile::tempdir().unwrap(); // mode 0700, owned by root
    let stack_dir = hidden.path().join(".stack");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/local/stack");
    let out = std::process::Command::new(script)
        .args(["--instance", "test", "env"])
        .env("KB_STACK_DIR", &stack_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = String::from_utf8_lossy(&out.stdout);
    let bin = env
        .lines()
        .find_map(|l| l.strip_prefix("export KB_PG_BIN_DIR="))
        .expect("stack env prints KB_PG_BIN_DIR");
    assert!(
        bin.starts_with("/var/lib/") && !bin.starts_with(&*hidden.path().to_string_lossy()),
        "Postgres' programs for {} would be at {bin}, where its service user cannot reach them",
        stack_dir.display()
    );
    // `env` made the (empty) directory for it; leave nothing behind.
    if let Some((base, _)) = bin.split_once("/pkgs/") {
        let _ = std::fs::remove_dir(base);
    }
}

/// `KB_NATS__SYNC` and `KB_NATS__MAX_STORE_BYTES` (the settings `nats.sync` and
/// `nats.max_store_bytes`) reach the configuration the stack starts its broker with.
#[tokio::test]
async fn the_stack_writes_the_brokers_sync_and_size_settings() {
    let stack = kb_testkit::stack().await.unwrap();
    let lib = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/local/lib");
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("nats.conf");
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(r#"set -euo pipefail; source "$1/common.sh"; source "$1/nats.sh"; NATS_DATA=$2; nats_config >"$3""#)
        .args(["-", &lib.display().to_string(), &dir.path().display().to_string(), &conf.display().to_string()])
        .env("KB_NATS__SYNC", "always")
        .env("KB_NATS__MAX_STORE_BYTES", "123456789")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let monitor = listener.local_addr().unwrap().port();
    drop(listener);
    let mut server = std::process::Command::new(stack.nats_server_bin())
        .args([
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            "-1",
            "-m",
            &monitor.to_string(),
        ])
        .arg("-sd")
        .arg(dir.path().join("data"))
        .arg("-c")
        .arg(&conf)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{monitor}/varz");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let varz: serde_json::Value = loop {
        if let Ok(r) = reqwest::get(&url).await {
            break r.json().await.unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nats-server did not start"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let _ = server.kill();
    let _ = server.wait();
    let config = &varz["jetstream"]["config"];
    assert_eq!(config["max_storage"], 123_456_789, "{config}");
    assert_eq!(config["sync_always"], true, "{config}");
}
