//! Shared test setup: a private NATS per test and readers of the real streams.
#![allow(dead_code)]

use async_nats::jetstream::stream::Stream;
use kb_proto::{DeadLetter, Message, MirrorEvent, SourceEvent, SourceRef};
use kb_stream::{subjects, Publisher, Topology};
use kb_testkit::NatsServer;
use kb_watcher::Scanner;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub const NAME: &str = "inbox";
pub const ORIGIN: &str = "folder:inbox";

pub struct Env {
    pub nats: NatsServer,
    /// Every source event published: `KB_SOURCE` keeps only the latest per source.
    pub sources: kb_testkit::SubjectTap,
    pub topo: Topology,
    pub publisher: Publisher,
    pub dir: tempfile::TempDir,
}

pub async fn setup() -> Env {
    let nats = kb_testkit::stack().await.unwrap().nats().await.unwrap();
    let sources = kb_testkit::SubjectTap::start(&nats.url(), subjects::SOURCE_ALL)
        .await
        .unwrap();
    let (topo, publisher) = connect(&nats.url()).await;
    Env {
        nats,
        sources,
        topo,
        publisher,
        dir: tempfile::tempdir().unwrap(),
    }
}

/// A fresh connection, as a restarted process would make.
pub async fn connect(url: &str) -> (Topology, Publisher) {
    let (_client, js) = kb_stream::connect(url, "watcher-test").await.unwrap();
    let topo = kb_stream::topology::ensure(&js).await.unwrap();
    let publisher = Publisher::new(&topo, 1024);
    (topo, publisher)
}

impl Env {
    pub fn root(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    pub fn scanner(&self, max_file_bytes: u64) -> Scanner {
        Scanner::new(
            &self.topo,
            self.publisher.clone(),
            NAME,
            ORIGIN,
            self.root(),
            max_file_bytes,
        )
    }

    pub fn write(&self, rel: &str, content: &[u8]) -> PathBuf {
        let path = self.dir.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, content).unwrap();
        path
    }

    /// Every source event published (each once, as the stream deduplicates them), in
    /// publish order, with its body.
    pub async fn source_events(&self) -> Vec<(SourceRef, Vec<u8>)> {
        published_sources(&self.sources, &self.publisher).await
    }

    pub async fn mirror_head(&self, source_id: &str) -> Option<(u64, MirrorEvent)> {
        let m = self
            .topo
            .mirror
            .get_last_raw_message_by_subject(&subjects::mirror(source_id))
            .await
            .ok()?;
        Some((m.sequence, MirrorEvent::decode(m.payload.as_ref()).unwrap()))
    }

    pub async fn dead_letters(&self) -> Vec<DeadLetter> {
        all_messages(&self.topo.dlq)
            .await
            .iter()
            .map(|p| DeadLetter::decode(p.as_slice()).unwrap())
            .collect()
    }

    pub async fn state(&self, source_id: &str) -> serde_json::Value {
        let bytes = self
            .topo
            .watch
            .get(format!("{NAME}.{source_id}"))
            .await
            .unwrap()
            .expect("state entry");
        serde_json::from_slice(&bytes).unwrap()
    }
}

/// The source events `tap` saw, with their bodies.
pub async fn published_sources(
    tap: &kb_testkit::SubjectTap,
    publisher: &Publisher,
) -> Vec<(SourceRef, Vec<u8>)> {
    let mut out = Vec::new();
    for m in tap.messages().await.unwrap() {
        let ev = SourceEvent::decode(m.payload.as_ref()).unwrap();
        let body = publisher
            .blobs()
            .fetch(ev.body.as_ref().unwrap())
            .await
            .unwrap();
        out.push((ev.source.unwrap(), body));
    }
    out
}

pub async fn all_messages(stream: &Stream) -> Vec<Vec<u8>> {
    let mut stream = stream.clone();
    let state = stream.info().await.unwrap().state.clone();
    if state.messages == 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for seq in state.first_sequence..=state.last_sequence {
        if let Ok(m) = stream.get_raw_message(seq).await {
            out.push(m.payload.to_vec());
        }
    }
    out
}

pub fn id(rel: &str) -> String {
    kb_core::ids::source_id(ORIGIN, rel)
}

pub fn set_mtime(path: &Path, t: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

pub fn an_hour_ago() -> SystemTime {
    SystemTime::now() - Duration::from_secs(3600)
}
