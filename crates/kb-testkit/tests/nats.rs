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

#[tokio::test]
async fn private_nats_keeps_jetstream_data_across_stop_kill_and_restart() {
    let stack = kb_testkit::stack().await.unwrap();
    let mut nats = stack.nats().await.unwrap();
    let mut other = stack.nats().await.unwrap();
    assert_ne!(nats.url(), other.url());

    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = jetstream::new(client.clone());
    js.create_stream(stream::Config {
        name: "KEEP".into(),
        subjects: vec!["keep.>".into()],
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .unwrap();
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
