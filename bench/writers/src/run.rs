//! The measured runs that go through the real code: the writer loop from the mirror stream
//! (as the services run it), `MirrorStore::apply` with the index present, and replay.

use futures::TryStreamExt;
use kb_core::service::Context;
use kb_graph::GraphConfig;
use kb_pg::PgStore;
use kb_proto::ParsedDocument;
use kb_store::{Change, MirrorStore, StoreCounts};
use kb_stream::{Publisher, Topology};
use kb_writer::WriterOptions;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use crate::gen::{self, Shape, Totals};
use crate::graph_unwind;
use crate::servers::Servers;

const INLINE_MAX: usize = 256 * 1024;
const POLL: Duration = Duration::from_millis(200);

pub struct Stream {
    url: String,
    topo: Topology,
    publisher: Publisher,
}

impl Stream {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let (_client, js) = kb_stream::connect(url, "kb-bench-writers").await?;
        let topo = kb_stream::topology::ensure(&js).await?;
        let publisher = Publisher::new(&topo, INLINE_MAX);
        Ok(Self {
            url: url.to_string(),
            topo,
            publisher,
        })
    }

    /// Publishes every document to the mirror stream, as the embedders would.
    pub async fn publish(&self, docs: &[ParsedDocument]) -> anyhow::Result<Duration> {
        let started = Instant::now();
        futures::stream::iter(docs.iter().map(Ok))
            .try_for_each_concurrent(8, |doc| async move {
                self.publisher.mirror(Change::Upsert(doc)).await?;
                anyhow::Ok(())
            })
            .await?;
        Ok(started.elapsed())
    }

    async fn caught_up(&self, consumer: &str) -> bool {
        matches!(
            self.topo.mirror.consumer_info(consumer).await,
            Ok(i) if i.num_pending == 0 && i.num_ack_pending == 0
        )
    }
}

/// A writer service in this process, as `kb-pg-writer` / `kb-graph-writer` run it.
fn spawn_writer<S: MirrorStore + 'static>(
    stage: kb_stream::Stage,
    store: S,
    url: &str,
    options: WriterOptions,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let shutdown = CancellationToken::new();
    let ctx = Context {
        name: stage.as_str(),
        shutdown: shutdown.clone(),
        health: Default::default(),
    };
    let url = url.to_string();
    let task = tokio::spawn(async move {
        kb_writer::run_with(stage, store, &url, INLINE_MAX, options, ctx).await
    });
    (shutdown, task)
}

pub struct Measured {
    pub rows: u64,
    pub seconds: f64,
}

fn rows(c: &StoreCounts) -> u64 {
    c.sources + c.chunks + c.entities + c.mentions + c.relations
}

pub async fn prepare_pg(url: &str, dims: usize) -> anyhow::Result<PgStore> {
    let store = PgStore::connect(url, dims, 8).await?;
    store.prepare().await?;
    Ok(store)
}

/// pg-writer from the stream into an empty store, until everything is in and indexed.
pub async fn pg_writer(
    stream: &Stream,
    url: &str,
    dims: usize,
    want: &Totals,
) -> anyhow::Result<Measured> {
    let store = prepare_pg(url, dims).await?;
    let started = Instant::now();
    let (stop, task) = spawn_writer(
        kb_stream::Stage::PgWriter,
        store.clone(),
        &stream.url,
        WriterOptions::new(4),
    );
    let counts = loop {
        tokio::time::sleep(POLL).await;
        if task.is_finished() {
            anyhow::bail!("pg-writer stopped early: {:?}", task.await?);
        }
        if !stream.caught_up("pg-writer").await || !store.has_vector_index().await? {
            continue;
        }
        let c = store.counts().await?;
        if c.sources == want.sources && c.chunks == want.chunks {
            break c;
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    stop.cancel();
    task.await??;
    Ok(Measured {
        rows: rows(&counts),
        seconds,
    })
}

/// `MirrorStore::apply` of new versions of the first `n` documents into a filled store whose
/// HNSW index is in place (4 at once, as the writer applies them).
pub async fn pg_apply_indexed(
    url: &str,
    dims: usize,
    shape: &Shape,
    n: usize,
) -> anyhow::Result<Measured> {
    let store = PgStore::connect(url, dims, 8).await?;
    let docs: Vec<ParsedDocument> = (0..n).map(|d| gen::document(shape, d, 2)).collect();
    let t = Totals::of(&docs);
    let started = Instant::now();
    futures::stream::iter(docs.iter().map(Ok))
        .try_for_each_concurrent(4, |doc| {
            let store = &store;
            async move {
                store.apply(Change::Upsert(doc)).await?;
                anyhow::Ok(())
            }
        })
        .await?;
    Ok(Measured {
        rows: t.sources + t.chunks + t.mentions + t.relations,
        seconds: started.elapsed().as_secs_f64(),
    })
}

pub struct GraphMeasured {
    pub items: u64,
    pub seconds: f64,
}

/// graph-writer from the stream into an empty graph, until it has caught up.
pub async fn graph_writer(
    stream: &Stream,
    cfg: &GraphConfig,
    want: &Totals,
) -> anyhow::Result<GraphMeasured> {
    let store = Servers::graph_store(cfg).await?;
    store.prepare().await?;
    let started = Instant::now();
    let (stop, task) = spawn_writer(
        kb_stream::Stage::GraphWriter,
        store.clone(),
        &stream.url,
        WriterOptions::new(1),
    );
    loop {
        tokio::time::sleep(POLL).await;
        if task.is_finished() {
            anyhow::bail!("graph-writer stopped early: {:?}", task.await?);
        }
        if stream.caught_up("graph-writer").await {
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    stop.cancel();
    task.await??;
    let counts = store.counts().await?;
    anyhow::ensure!(
        counts.sources == want.sources && counts.chunks == want.chunks,
        "graph-writer caught up but the graph holds {counts:?}"
    );
    let raw = Servers::raw_graph(cfg).await?;
    Ok(GraphMeasured {
        items: graph_unwind::items(&raw).await?,
        seconds,
    })
}

pub struct ReplayMeasured {
    pub docs: u64,
    pub rows: u64,
    pub seconds: f64,
    pub index_seconds: f64,
}

/// `kb replay --store postgres` into an empty database.
pub async fn pg_replay(stream: &Stream, url: &str, dims: usize) -> anyhow::Result<ReplayMeasured> {
    let store = PgStore::connect(url, dims, 8).await?;
    let report = kb_writer::replay(
        &stream.publisher,
        &store,
        &kb_writer::ReplayOptions::default(),
        |_| {},
    )
    .await?;
    anyhow::ensure!(report.bulk && report.skipped.is_empty(), "{report:?}");
    let counts = store.counts().await?;
    Ok(ReplayMeasured {
        docs: report.messages,
        rows: rows(&counts),
        seconds: (report.load + report.finish).as_secs_f64(),
        index_seconds: report.finish.as_secs_f64(),
    })
}
