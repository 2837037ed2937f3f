//! The parser service in-process against a real NATS, and what the tests read back.
#![allow(dead_code, clippy::unwrap_used)] // each test binary uses part of it

use std::time::{Duration, Instant};

use kb_core::service::Context;
use kb_core::settings::Isolation;
use kb_core::telemetry::Health;
use kb_core::Settings;
use kb_proto::{DeadLetter, Message, MirrorEvent, SourceRef};
use kb_stream::{subjects, Publisher, Topology};
use tokio_util::sync::CancellationToken;

/// The worker program: the parser binary this package builds (a test's own executable is
/// not one).
pub const WORKER_BIN: &str = env!("CARGO_BIN_EXE_kb-parser");

pub struct Running {
    pub topo: Topology,
    /// Publishes source events the way the watcher does; bodies over 16 bytes are objects.
    pub publisher: Publisher,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _nats: kb_testkit::NatsServer,
}

/// Settings for a test: quick redeliveries (ack_wait 1 s), the given isolation.
pub fn settings(isolation: Isolation) -> Settings {
    let mut s = Settings::default();
    s.parser.ack_wait_secs = 1;
    s.parser.crash_limit = 3;
    s.parser.isolation = isolation;
    s.parser.worker_bin = Some(WORKER_BIN.into());
    s
}

/// Starts a NATS server and a parser on it.
pub async fn start(mut settings: Settings) -> Running {
    let nats = kb_testkit::stack().await.unwrap().nats().await.unwrap();
    settings.nats.url = nats.url();
    let (_client, js) = kb_stream::connect(&nats.url(), "parser-test")
        .await
        .unwrap();
    let topo = kb_stream::topology::ensure(&js).await.unwrap();
    let publisher = Publisher::new(&topo, 16);
    let shutdown = CancellationToken::new();
    let ctx = Context {
        name: "kb-parser",
        shutdown: shutdown.clone(),
        health: Health::default(),
    };
    let task = tokio::spawn(kb_parser::run(settings, ctx));
    Running {
        topo,
        publisher,
        shutdown,
        task,
        _nats: nats,
    }
}

pub fn source(id: &str, path: &str) -> SourceRef {
    SourceRef {
        source_id: id.into(),
        version: 1,
        origin: "test".into(),
        path: path.into(),
        ..SourceRef::default()
    }
}

impl Running {
    pub async fn publish(&self, id: &str, path: &str, bytes: &[u8]) -> SourceRef {
        let s = source(id, path);
        self.publisher.source(&s, bytes.to_vec()).await.unwrap();
        s
    }

    /// The parser's dead letter for `id`, once there is one.
    pub async fn dead_letter(&self, id: &str, within: Duration) -> DeadLetter {
        let subject = subjects::dead_letter(kb_stream::Stage::Parser.as_str(), id);
        let deadline = Instant::now() + within;
        loop {
            if let Ok(m) = self
                .topo
                .dlq
                .get_last_raw_message_by_subject(&subject)
                .await
            {
                return DeadLetter::decode(m.payload.as_ref()).unwrap();
            }
            assert!(Instant::now() < deadline, "no dead letter for {id}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn has_dead_letter(&self, id: &str) -> bool {
        let subject = subjects::dead_letter(kb_stream::Stage::Parser.as_str(), id);
        self.topo
            .dlq
            .get_last_raw_message_by_subject(&subject)
            .await
            .is_ok()
    }

    /// Waits until `id` is on the parsed stream.
    pub async fn wait_parsed(&self, id: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while self
            .topo
            .parsed
            .get_last_raw_message_by_subject(&subjects::parsed(id))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "{id} was not parsed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last mirror event of `id` (the parser's FAILED record).
    pub async fn mirror_event(&self, id: &str) -> MirrorEvent {
        let m = self
            .topo
            .mirror
            .get_last_raw_message_by_subject(&subjects::mirror(id))
            .await
            .unwrap();
        MirrorEvent::decode(m.payload.as_ref()).unwrap()
    }

    /// Asserts the give-up of `id`: a dead letter of `kind` and a FAILED mirror record with
    /// the same reason; returns the reason.
    pub async fn assert_failed(&self, id: &str, kind: &str, within: Duration) -> String {
        let dl = self.dead_letter(id, within).await;
        assert_eq!(dl.error_kind, kind, "{}", dl.reason);
        assert_eq!(dl.stage, "parser");
        let ev = self.mirror_event(id).await;
        assert_eq!(ev.kind(), kb_proto::mirror_event::Kind::Failed, "{id}");
        assert_eq!(ev.source.as_ref().map(|s| s.version), Some(1));
        // the same reason, named by the file's path when the dead letter's is not
        assert!(
            ev.error.ends_with(&dl.reason),
            "FAILED {:?} vs dead letter {:?}",
            ev.error,
            dl.reason
        );
        dl.reason
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}
