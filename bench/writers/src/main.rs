//! kb-bench-writers: how fast the two writers fill their stores, against the raw baselines on
//! the same data, and how fast a store is rebuilt by replay.
//!
//! On the `bench` stack instance (`make bench-writers`), with a generated knowledge base
//! (default 200 documents × 100 chunks = 20,000 chunks of 1024-dimensional vectors, entities
//! from a shared pool of 2,000, three mentions per chunk, 15 relations per document):
//!
//! 1. the documents are published to the mirror stream (bodies by reference, as in production);
//! 2. **pg-writer**: the real writer loop (`kb_writer::run_with`, the service's options) drains
//!    the stream into an empty database: rows/s until everything is in and indexed;
//! 3. **COPY baseline**: the same rows by binary `COPY`, then the HNSW index;
//! 4. pg apply with the index present (a second version of some documents): the normal mode;
//! 5. **graph-writer**: the real writer loop into an empty graph: nodes+relationships/s;
//! 6. **UNWIND baseline**: the same nodes and relationships by batched `UNWIND … MERGE`;
//! 7. **replay**: `kb replay`'s code from the mirror stream into an empty database.
//!
//! Prints a table, then `key=value` lines (the last lines of the output).

mod gen;
mod graph_unwind;
mod pg_copy;
mod run;
mod servers;

use gen::{Shape, Totals};
use servers::Servers;
use std::time::Instant;

fn arg(name: &str, default: usize) -> anyhow::Result<usize> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        Some(i) => Ok(args
            .get(i + 1)
            .ok_or_else(|| anyhow::anyhow!("{name} needs a value"))?
            .parse()?),
        None => Ok(default),
    }
}

fn per_s(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let shape = Shape {
        docs: arg("--docs", 200)?,
        chunks_per_doc: arg("--chunks", 100)?,
        dims: arg("--dims", 1024)?,
        entity_pool: arg("--entities", 2000)?,
        mentions_per_chunk: 3,
        relations_per_doc: 15,
    };
    let servers = Servers::from_env()?;
    let t = Instant::now();
    let docs: Vec<_> = (0..shape.docs)
        .map(|d| gen::document(&shape, d, 1))
        .collect();
    let totals = Totals::of(&docs);
    println!(
        "knowledge base: {} documents, {} chunks × {} dims, {} entities, {} mentions, {} relations \
         ({} Postgres rows, {} graph items), generated in {:.1} s",
        totals.sources,
        totals.chunks,
        shape.dims,
        totals.entities,
        totals.mentions,
        totals.relations,
        totals.rows(),
        totals.graph_items(),
        t.elapsed().as_secs_f64()
    );

    let stream = run::Stream::connect(&servers.nats_url).await?;
    let published = stream.publish(&docs).await?;
    println!(
        "published to the mirror stream: {:.1} s ({:.0} docs/s)",
        published.as_secs_f64(),
        per_s(totals.sources, published.as_secs_f64())
    );

    // Postgres: the writer, then COPY + index, on the same data.
    let writer_url = servers.fresh_postgres("bench_pg_writer").await?;
    let pg = run::pg_writer(&stream, &writer_url, shape.dims, &totals).await?;
    let pg_rows_s = per_s(pg.rows, pg.seconds);
    println!(
        "pg-writer (stream → empty store, bulk mode, 4 at once): {} rows in {:.1} s = {:.0} rows/s",
        pg.rows, pg.seconds, pg_rows_s
    );
    let copy_url = servers.fresh_postgres("bench_pg_copy").await?;
    run::prepare_pg(&copy_url, shape.dims).await?;
    let copy = pg_copy::load(&copy_url, &docs).await?;
    let copy_secs = copy.load.as_secs_f64() + copy.index.as_secs_f64();
    let copy_rows_s = per_s(copy.rows, copy_secs);
    println!(
        "binary COPY: {} rows in {:.1} s + HNSW build {:.1} s = {:.0} rows/s",
        copy.rows,
        copy.load.as_secs_f64(),
        copy.index.as_secs_f64(),
        copy_rows_s
    );
    let indexed = run::pg_apply_indexed(&copy_url, shape.dims, &shape, shape.docs.min(20)).await?;
    let indexed_rows_s = per_s(indexed.rows, indexed.seconds);
    println!(
        "pg apply with the HNSW index present (new versions of {} documents): {:.0} rows/s",
        shape.docs.min(20),
        indexed_rows_s
    );

    // The graph: the writer, then plain UNWIND … MERGE.
    let writer_graph = servers.fresh_graph("bench_graph_writer").await?;
    let graph = run::graph_writer(&stream, &writer_graph, &totals).await?;
    let graph_items_s = per_s(graph.items, graph.seconds);
    println!(
        "graph-writer (stream → empty graph): {} nodes+relationships in {:.1} s = {:.0} items/s",
        graph.items, graph.seconds, graph_items_s
    );
    let unwind_cfg = servers.fresh_graph("bench_graph_unwind").await?;
    let unwind_store = Servers::graph_store(&unwind_cfg).await?;
    kb_store::MirrorStore::prepare(&unwind_store).await?;
    let raw = Servers::raw_graph(&unwind_cfg).await?;
    let unwind_time = graph_unwind::load(&raw, &docs).await?;
    let unwind_items = graph_unwind::items(&raw).await?;
    let unwind_items_s = per_s(unwind_items, unwind_time.as_secs_f64());
    println!(
        "UNWIND … MERGE: {} nodes+relationships in {:.1} s = {:.0} items/s",
        unwind_items,
        unwind_time.as_secs_f64(),
        unwind_items_s
    );

    // Replay: the mirror stream into an empty database, bulk mode.
    let replay_url = servers.fresh_postgres("bench_pg_replay").await?;
    let replay = run::pg_replay(&stream, &replay_url, shape.dims).await?;
    let replay_docs_s = per_s(replay.docs, replay.seconds);
    println!(
        "replay (mirror stream → empty store, bulk mode): {} docs in {:.1} s ({:.1} s index) = {:.1} docs/s",
        replay.docs, replay.seconds, replay.index_seconds, replay_docs_s
    );

    println!("chunks={}", totals.chunks);
    println!("dims={}", shape.dims);
    println!("pg_rows={}", pg.rows);
    println!("pg_rows_per_s={pg_rows_s:.0}");
    println!("pg_copy_rows_per_s={copy_rows_s:.0}");
    println!("pg_copy_load_s={:.2}", copy.load.as_secs_f64());
    println!("pg_index_build_s={:.2}", copy.index.as_secs_f64());
    println!("pg_ratio_vs_copy={:.2}", pg_rows_s / copy_rows_s.max(1e-9));
    println!("pg_indexed_rows_per_s={indexed_rows_s:.0}");
    println!("graph_items={}", graph.items);
    println!("graph_items_per_s={graph_items_s:.0}");
    println!("graph_unwind_items_per_s={unwind_items_s:.0}");
    println!(
        "graph_ratio_vs_unwind={:.2}",
        graph_items_s / unwind_items_s.max(1e-9)
    );
    println!("replay_docs_per_s={replay_docs_s:.1}");
    println!(
        "replay_rows_per_s={:.0}",
        per_s(replay.rows, replay.seconds)
    );
    Ok(())
}
