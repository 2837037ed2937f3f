//! A private nats-server per test: JetStream works and keeps its data across restarts.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::time::Duration;

use async_nats::jetstream::{self, stream};

async fn stream_messages(url: &str) -> u64 {
    let client = async_nats::connect(url).await.unwrap();
    let js = jetstream::new(client);
    let mut s = js.get_stream("KEEP").await.unwrap();
    s.info().await.unwrap().state.messages
}

async fn file_stream(js: &jetstream::Context, name: &str, subject: &str) {
    js.create_stream(stream::Config {
        name: name.into(),
        subjects: vec![subject.into()],
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .unwrap();
}

/// The server's `/jsz` (JetStream configuration and usage).
async fn jsz(nats: &kb_testkit::NatsServer) -> serde_json::Value {
    reqwest::get(format!("{}/jsz", nats.monitor_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn private_nats_keeps_jetstream_data_across_stop_kill_and_restart() {
    let stack = kb_testkit::stack().await.unwrap();
    let mut nats = stack.nats().await.unwrap();
    let mut other = stack.nats().await.unwrap();
    assert_ne!(nats.url(), other.url());

    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = jetstream::new(client.clone());
    file_stream(&js, "KEEP", "keep.>").await;
    for i in 0..3 {
        js.publish(format!("keep.{i}"), "x".into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    drop(js);
    drop(client);

    // The other private server does not have this stream.
    let oc = async_nats::connect(other.url()).await.unwrap();
    assert!(jetstream::new(oc).get_stream("KEEP").await.is_err());

    nats.stop().await.unwrap();
    assert!(!nats.is_running());
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", nats.port()))
            .await
            .is_err(),
        "the port is closed after stop"
    );
    nats.start().await.unwrap();
    assert_eq!(stream_messages(&nats.url()).await, 3);

    // A crash (SIGKILL) after acknowledged publishes keeps them too.
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = jetstream::new(client);
    js.publish("keep.4", "y".into())
        .await
        .unwrap()
        .await
        .unwrap();
    nats.kill9().unwrap();
    assert!(!nats.is_running());
    nats.start().await.unwrap();
    assert_eq!(stream_messages(&nats.url()).await, 4);

    other.stop().await.unwrap();
}

#[tokio::test]
async fn dropping_the_server_kills_it_and_removes_its_data() {
    let stack = kb_testkit::stack().await.unwrap();
    let nats = stack.nats().await.unwrap();
    let port = nats.port();
    let store = nats.store_dir();
    assert!(store.exists());
    drop(nats);
    assert!(!store.exists());
    let mut refused = false;
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "nobody listens on the port after drop");
}

#[tokio::test]
async fn a_configured_server_syncs_always_and_refuses_writes_beyond_its_store_limit() {
    let stack = kb_testkit::stack().await.unwrap();
    let mut nats = stack
        .nats_with(kb_testkit::NatsConfig {
            sync_interval: Some("always".into()),
            max_file_store: Some(1024 * 1024),
            ..Default::default()
        })
        .await
        .unwrap();
    let js_config = jsz(&nats).await;
    assert_eq!(
        js_config["config"]["max_storage"],
        1024 * 1024,
        "{js_config}"
    );
    assert_eq!(js_config["config"]["sync_always"], true, "{js_config}");

    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    file_stream(&js, "FULL", "full.>").await;
    let body = vec![b'x'; 64 * 1024];
    let mut refused = None;
    for i in 0..40 {
        let ack = match js.publish(format!("full.{i}"), body.clone().into()).await {
            Ok(ack) => ack.await,
            Err(e) => Err(e),
        };
        if let Err(e) = ack {
            refused = Some((i, e.to_string()));
            break;
        }
    }
    let (at, error) = refused.expect("1 MiB holds fewer than 40 × 64 KiB");
    assert!((10..=16).contains(&at), "refused at message {at}: {error}");
    // The limit survives a restart (the config file is kept).
    nats.stop().await.unwrap();
    nats.start().await.unwrap();
    let js_config = jsz(&nats).await;
    assert_eq!(
        js_config["config"]["max_storage"],
        1024 * 1024,
        "{js_config}"
    );
}
