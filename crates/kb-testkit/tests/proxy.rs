//! The TCP proxy against a real echo server: pass, blackhole, cut and refuse behave as the
//! network faults they stand for, and the counters prove what happened.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kb_testkit::{Mode, TcpProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An echo server; the counter says how many connections reached it.
async fn echo_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let (mut r, mut w) = conn.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    (addr, accepted)
}

async fn roundtrip(c: &mut TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    c.write_all(msg).await?;
    let mut buf = vec![0; msg.len()];
    match tokio::time::timeout(Duration::from_millis(300), c.read_exact(&mut buf)).await {
        Ok(read) => read.map(|_| buf),
        Err(_) => Err(ErrorKind::TimedOut.into()),
    }
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn pass_forwards_both_ways_with_half_closes_and_counts() {
    let (echo, reached) = echo_server().await;
    let proxy = TcpProxy::start(echo).await.unwrap();
    assert_eq!(proxy.mode(), Mode::Pass);
    let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(roundtrip(&mut c, b"hello").await.unwrap(), b"hello");
    let stats = proxy.stats();
    assert_eq!((stats.accepted, stats.live), (1, 1));
    assert_eq!(stats.forwarded_bytes, 10, "5 bytes each way");
    assert_eq!(reached.load(Ordering::SeqCst), 1);

    // Our end of file reaches the server, which closes, which reaches us.
    c.shutdown().await.unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
    wait_until("the connection is gone", || proxy.stats().live == 0).await;
}

#[tokio::test]
async fn a_blackhole_drops_everything_and_its_connections_never_recover() {
    let (echo, reached) = echo_server().await;
    let proxy = TcpProxy::start(echo).await.unwrap();
    let mut old = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(roundtrip(&mut old, b"ping").await.unwrap(), b"ping");

    proxy.blackhole();
    assert_eq!(proxy.mode(), Mode::Blackhole);
    let err = roundtrip(&mut old, b"lost").await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::TimedOut,
        "no answer, no close: {err}"
    );
    proxy.wait_dropped(4, Duration::from_secs(5)).await.unwrap();

    // A connection made during the blackhole is accepted, and never reaches the server.
    let mut born_dead = TcpStream::connect(proxy.addr()).await.unwrap();
    let err = roundtrip(&mut born_dead, b"hello?").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    proxy
        .wait_dropped(10, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(reached.load(Ordering::SeqCst), 1);
    assert!(proxy
        .wait_dropped(1_000, Duration::from_millis(50))
        .await
        .is_err());

    proxy.pass().await.unwrap();
    let err = roundtrip(&mut old, b"still lost").await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::TimedOut,
        "a blackholed connection stays dead"
    );
    let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(roundtrip(&mut fresh, b"back").await.unwrap(), b"back");
    let stats = proxy.stats();
    assert_eq!((stats.accepted, stats.live), (3, 3), "{stats:?}");
    assert_eq!(stats.forwarded_bytes, 16, "{stats:?}");
}

#[tokio::test]
async fn cut_resets_every_live_connection_and_keeps_serving() {
    let (echo, _) = echo_server().await;
    let proxy = TcpProxy::start(echo).await.unwrap();
    let mut a = TcpStream::connect(proxy.addr()).await.unwrap();
    let mut b = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(roundtrip(&mut a, b"a").await.unwrap(), b"a");
    assert_eq!(roundtrip(&mut b, b"b").await.unwrap(), b"b");

    assert_eq!(proxy.cut().await, 2);
    let mut buf = [0u8; 8];
    for c in [&mut a, &mut b] {
        let err = c.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    }
    let stats = proxy.stats();
    assert_eq!((stats.cut, stats.live), (2, 0), "{stats:?}");
    assert_eq!(proxy.mode(), Mode::Pass);
    let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(roundtrip(&mut c, b"c").await.unwrap(), b"c");
    assert_eq!(proxy.cut().await, 1);
}

#[tokio::test]
async fn refuse_closes_the_port_until_pass() {
    let (echo, _) = echo_server().await;
    let proxy = TcpProxy::start(echo).await.unwrap();
    let mut live = TcpStream::connect(proxy.addr()).await.unwrap();
    // Accepted for sure (one still in the backlog would be reset with the listener).
    assert_eq!(roundtrip(&mut live, b"up").await.unwrap(), b"up");

    proxy.refuse().await.unwrap();
    let err = TcpStream::connect(proxy.addr()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    assert_eq!(
        roundtrip(&mut live, b"live").await.unwrap(),
        b"live",
        "open connections are left alone"
    );

    proxy.pass().await.unwrap();
    let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(roundtrip(&mut c, b"again").await.unwrap(), b"again");
}

#[tokio::test]
async fn an_upstream_that_is_down_closes_the_client_and_dropping_the_proxy_resets() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let proxy = TcpProxy::start(port).await.unwrap();
    let mut c = TcpStream::connect(proxy.addr()).await.unwrap();
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(n, Ok(0) | Err(_)), "closed: {n:?}");

    let (echo, _) = echo_server().await;
    let proxy = TcpProxy::start(echo).await.unwrap();
    let addr = proxy.addr();
    let mut c = TcpStream::connect(addr).await.unwrap();
    assert_eq!(roundtrip(&mut c, b"x").await.unwrap(), b"x");
    drop(proxy);
    let read = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "closed: {read:?}");
    wait_until("the port is closed", || {
        std::net::TcpStream::connect(addr).is_err()
    })
    .await;
}
