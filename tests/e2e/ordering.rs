//! Out-of-order and duplicate delivery through the real writer binaries: whatever order the
//! versions of a source reach the writers in, and however often, both stores end at the newest
//! version, a delete beats any older upsert arriving later, and the two stores are identical.

#[path = "writers/mod.rs"]
mod writers;

use kb_e2e::Pipeline;
use kb_store::{Change, MirrorStore, SourceSummary};
use std::collections::BTreeMap;
use std::time::Duration;
use writers::*;

const WAIT: Duration = Duration::from_secs(120);

async fn both(p: &Pipeline) -> anyhow::Result<(Vec<SourceSummary>, Vec<SourceSummary>)> {
    Ok((
        p.postgres().await?.summaries().await?,
        p.graph_store().await?.summaries().await?,
    ))
}

/// Versions 3, 1, 2, duplicates, a delete (v4) and then a late upsert (v3), one at a time
/// straight onto the mirror subject, each seen by both writers before the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_duplicate_and_deleted_versions_lose_in_both_stores() -> anyhow::Result<()> {
    let mut p = Pipeline::new().await?;
    p.start("pg-writer")?;
    p.start("graph-writer")?;
    let js = jetstream(&p).await?;
    let id = "ordered";

    // v3 first.
    let v3 = document(id, 3, 4);
    let seq = publish_raw(&js, id, 3, upsert_event(&v3), "t:v3").await?;
    wait_writers_past(&js, seq, WAIT).await?;
    let (pg, graph) = both(&p).await?;
    assert_eq!(pg.len(), 1, "{pg:?}\n{}", p.logs());
    assert_eq!((pg[0].version, pg[0].chunks), (3, 4));
    assert_eq!(pg, graph);
    let at_v3 = pg;

    // v1 and v2 arrive after it (parallel embedders, a slow redelivery): nothing changes.
    let seq = publish_raw(&js, id, 1, upsert_event(&document(id, 1, 7)), "t:v1").await?;
    wait_writers_past(&js, seq, WAIT).await?;
    let seq = publish_raw(&js, id, 2, upsert_event(&document(id, 2, 5)), "t:v2").await?;
    wait_writers_past(&js, seq, WAIT).await?;
    let (pg, graph) = both(&p).await?;
    assert_eq!(pg, at_v3, "an older version replaced a newer one");
    assert_eq!(graph, at_v3);

    // v3 again, twice (a redelivery and a republish): still exactly v3, nothing doubled.
    let seq = publish_raw(&js, id, 3, upsert_event(&v3), "t:v3-again").await?;
    wait_writers_past(&js, seq, WAIT).await?;
    let seq = publish_raw(&js, id, 3, upsert_event(&v3), "t:v3-once-more").await?;
    wait_writers_past(&js, seq, WAIT).await?;
    let (pg, graph) = both(&p).await?;
    assert_eq!(pg, at_v3);
    assert_eq!(graph, at_v3);
    let counts = p.postgres().await?.counts().await?;
    assert_eq!((counts.chunks, counts.mentions), (4, 4));
    assert_eq!(p.graph_store().await?.counts().await?, counts);

    // A delete at v4, then the v3 upsert arriving late: the source stays deleted.
    let seq = publish_raw(&js, id, 4, delete_event(id, 4), "t:v4-delete").await?;
    wait_writers_past(&js, seq, WAIT).await?;
    assert_eq!(both(&p).await?, (vec![], vec![]));
    let seq = publish_raw(&js, id, 3, upsert_event(&v3), "t:v3-late").await?;
    wait_writers_past(&js, seq, WAIT).await?;
    assert_eq!(
        both(&p).await?,
        (vec![], vec![]),
        "a late upsert resurrected a deleted source"
    );
    let pg = p.postgres().await?;
    let counts = pg.counts().await?;
    assert_eq!((counts.sources, counts.chunks, counts.entities), (0, 0, 0));
    assert_eq!(p.graph_store().await?.counts().await?, counts);
    let tombstone: i64 = sqlx::query_scalar("SELECT version FROM tombstones WHERE source_id = $1")
        .bind(id)
        .fetch_one(pg.pool())
        .await?;
    assert_eq!(tombstone, 4);

    // A newer upsert (v5) does bring it back, in both.
    let seq = publish_raw(&js, id, 5, upsert_event(&document(id, 5, 2)), "t:v5").await?;
    wait_writers_past(&js, seq, WAIT).await?;
    let (pg, graph) = both(&p).await?;
    assert_eq!(pg.len(), 1);
    assert_eq!((pg[0].version, pg[0].chunks), (5, 2));
    assert_eq!(pg, graph);
    p.stop("pg-writer")?;
    p.stop("graph-writer")?;
    Ok(())
}

/// Deterministic shuffle (xorshift), so a failure can be replayed.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        items.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

/// Many sources, every version published by concurrent publishers in shuffled order (as
/// parallel embedders finish), with duplicates and deletes, while both writers run: each
/// store ends with exactly the newest state of every source, and the stores are identical.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_out_of_order_publishers_converge_in_both_stores() -> anyhow::Result<()> {
    let mut p = Pipeline::new().await?;
    p.start("pg-writer")?;
    p.start("graph-writer")?;
    let js = jetstream(&p).await?;

    const SOURCES: usize = 24;
    const VERSIONS: u64 = 4;
    // Every third source ends deleted (its newest version is a delete).
    let deleted = |s: usize| s.is_multiple_of(3);
    let mut work: Vec<(String, u64)> = (0..SOURCES)
        .flat_map(|s| (1..=VERSIONS).map(move |v| (format!("src{s:02}"), v)))
        .collect();
    // Duplicates of some versions.
    work.extend((0..SOURCES).step_by(2).map(|s| (format!("src{s:02}"), 2)));
    work.extend(
        (0..SOURCES)
            .step_by(5)
            .map(|s| (format!("src{s:02}"), VERSIONS)),
    );
    shuffle(&mut work, 0x5eed_1234_abcd_0001);

    let mut tasks = Vec::new();
    for part in work.chunks(work.len().div_ceil(4)) {
        let part = part.to_vec();
        let publisher = js.publisher.clone();
        tasks.push(tokio::spawn(async move {
            for (id, v) in part {
                let s: usize = id[3..].parse()?;
                if v == VERSIONS && deleted(s) {
                    publisher.mirror(Change::Delete(&source(&id, v))).await?;
                } else {
                    let doc = document(&id, v, 1 + (v as u32 % 3));
                    publisher.mirror(Change::Upsert(&doc)).await?;
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }

    let expected: BTreeMap<String, u64> = (0..SOURCES)
        .filter(|s| !deleted(*s))
        .map(|s| (format!("src{s:02}"), VERSIONS))
        .collect();
    let (pg, graph) = p
        .wait_for("the newest version of every source", WAIT, |s| {
            s.iter()
                .map(|x| (x.source_id.clone(), x.version))
                .collect::<BTreeMap<_, _>>()
                == expected
        })
        .await?;
    assert_eq!(pg, graph, "postgres and the graph disagree");
    for s in &pg {
        let want = document(&s.source_id, VERSIONS, 1 + (VERSIONS as u32 % 3));
        assert_eq!(s.chunks, want.chunks.len() as u64, "{s:?}");
    }
    // Nothing left over from older versions or deleted sources.
    let counts = p.postgres().await?.counts().await?;
    let chunks: u64 = pg.iter().map(|s| s.chunks).sum();
    assert_eq!(counts.chunks, chunks);
    assert_eq!(p.graph_store().await?.counts().await?, counts);
    p.stop("pg-writer")?;
    p.stop("graph-writer")?;
    Ok(())
}
