//! Where one hybrid query's time goes: the steps the engine takes for it, each timed alone,
//! one question at a time, in this process against the same stores (the query model, then
//! `kb_pg::PgStore` and `kb_graph::GraphStore` through the `kb_store::read` traits the engine
//! calls). In the service the three retrievers run at once; here they run one after another
//! so each can be timed. The graph walk is also timed on Postgres's copy of the entities (the
//! stand-in the engine uses when the graph is away), for comparison.

use kb_core::Settings;
use kb_graph::{GraphConfig, GraphStore};
use kb_pg::PgStore;
use kb_query::question::{self, NEIGHBOUR_SHARE};
use kb_store::read::{ChunkFilter, EntityIndex, TextIndex};
use std::collections::HashSet;
use std::time::Instant;

use crate::stats::percentile;

/// Rounds over all questions.
const ROUNDS: usize = 3;

pub struct Step {
    pub name: &'static str,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
    /// Mean rows returned.
    pub rows: f64,
}

#[derive(Default)]
struct Samples {
    ms: Vec<f64>,
    rows: Vec<usize>,
}

impl Samples {
    fn add(&mut self, started: Instant, rows: usize) {
        self.ms.push(started.elapsed().as_secs_f64() * 1e3);
        self.rows.push(rows);
    }
    /// `None` when the step never ran.
    fn step(&self, name: &'static str) -> Option<Step> {
        if self.ms.is_empty() {
            return None;
        }
        let n = self.ms.len() as f64;
        Some(Step {
            name,
            p50_ms: percentile(&self.ms, 50.0),
            p99_ms: percentile(&self.ms, 99.0),
            mean_ms: self.ms.iter().sum::<f64>() / n,
            rows: self.rows.iter().sum::<usize>() as f64 / n,
        })
    }
}

/// The steps of a hybrid query at `depth` candidates per retriever.
pub async fn measure(
    settings: &Settings,
    pg_url: &str,
    graph: &GraphConfig,
    questions: &[String],
) -> anyhow::Result<Vec<Step>> {
    let q = &settings.query;
    let depth = q.depth.max(10);
    let embedder = kb_embed::load_embedder(settings)?;
    let pg = PgStore::connect(pg_url, settings.embedder.dimensions, 2).await?;
    let graph = GraphStore::connect(graph).await?;
    let filter = ChunkFilter::default();
    let mut embed = Samples::default();
    let mut vector = Samples::default();
    let mut keyword = Samples::default();
    let mut graph_walk = Walk::default();
    let mut pg_walk = Walk::default();
    for _ in 0..ROUNDS {
        for text in questions {
            let t = Instant::now();
            let v = embedder.embed(std::slice::from_ref(text)).await?;
            embed.add(t, 1);
            let v = v.into_iter().next().unwrap_or_default();

            let t = Instant::now();
            let hits = pg.nearest(&v, &filter, depth).await?;
            vector.add(t, hits.len());

            let t = Instant::now();
            let hits = pg.keyword(text, &filter, depth).await?;
            keyword.add(t, hits.len());

            graph_walk
                .run(&graph, text, &filter, depth, q.max_neighbours)
                .await?;
            pg_walk
                .run(&pg, text, &filter, depth, q.max_neighbours)
                .await?;
        }
    }
    let mut steps: Vec<Option<Step>> = vec![
        embed.step("embed the query (local model)"),
        vector.step("vector: pgvector nearest"),
        keyword.step("keyword: Postgres full text"),
    ];
    graph_walk.steps("graph walk on the graph (Bolt)", &mut steps);
    pg_walk.steps("the same walk on Postgres's copy", &mut steps);
    Ok(steps.into_iter().flatten().collect())
}

/// The graph retriever's walk (the engine's `entity_walk`), each statement timed.
#[derive(Default)]
struct Walk {
    all: Samples,
    resolve: Samples,
    neighbours: Samples,
    named: Samples,
    related: Samples,
}

impl Walk {
    async fn run<E: EntityIndex + ?Sized>(
        &mut self,
        index: &E,
        text: &str,
        filter: &ChunkFilter,
        depth: usize,
        max_neighbours: usize,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let names = kb_parse::question_names(text);
        let t = Instant::now();
        let found = index.resolve(&names, false).await?;
        self.resolve.add(t, found.len());
        let weighted = question::weigh(&found);
        if weighted.is_empty() {
            self.all.add(started, 0);
            return Ok(());
        }
        let ids: Vec<String> = weighted
            .iter()
            .map(|(e, _)| e.entity.entity_id.clone())
            .collect();
        let t = Instant::now();
        let around = index.neighbours(&ids, max_neighbours).await?;
        self.neighbours.add(t, around.len());
        let direct: Vec<(String, f64)> = weighted
            .iter()
            .map(|(e, w)| (e.entity.entity_id.clone(), *w))
            .collect();
        let t = Instant::now();
        let mut hits = index.mentioning(&direct, filter, depth).await?;
        self.named.add(t, hits.len());
        if hits.len() < depth {
            let named: HashSet<&str> = ids.iter().map(String::as_str).collect();
            let mut more: Vec<(String, f64)> = Vec::new();
            for n in &around {
                if !named.contains(n.entity.entity_id.as_str())
                    && !more.iter().any(|(id, _)| *id == n.entity.entity_id)
                {
                    more.push((n.entity.entity_id.clone(), NEIGHBOUR_SHARE * n.weight));
                }
            }
            if !more.is_empty() {
                let t = Instant::now();
                let extra = index.mentioning(&more, filter, depth).await?;
                self.related.add(t, extra.len());
                hits.extend(extra);
            }
        }
        self.all.add(started, hits.len());
        Ok(())
    }

    fn steps(&self, name: &'static str, out: &mut Vec<Option<Step>>) {
        out.push(self.all.step(name));
        out.push(self.resolve.step("  resolve the question's entities"));
        out.push(self.neighbours.step("  their neighbours"));
        out.push(self.named.step("  chunks mentioning them"));
        out.push(self.related.step("  chunks of their neighbours"));
    }
}
