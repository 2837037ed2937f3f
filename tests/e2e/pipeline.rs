//! The whole pipeline, as a user runs it: five real binaries, a watched folder, real NATS,
//! Postgres+pgvector and a Bolt graph server. Files created, edited and deleted in the folder
//! end up as exactly the folder's state in both stores.

use kb_e2e::{psql_file, write_atomic, Pipeline};
use kb_store::SourceSummary;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(240);

fn sid(path: &str) -> String {
    kb_core::ids::source_id("folder:inbox", path)
}

fn find<'a>(s: &'a [SourceSummary], path: &str) -> Option<&'a SourceSummary> {
    let id = sid(path);
    s.iter().find(|x| x.source_id == id)
}

async fn source_paths(p: &Pipeline) -> anyhow::Result<Vec<String>> {
    let pg = p.postgres().await?;
    let rows: Vec<(String,)> = sqlx::query_as("SELECT path FROM sources ORDER BY path")
        .fetch_all(pg.pool())
        .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

async fn stream_last_seq(p: &Pipeline, stream: &str) -> anyhow::Result<u64> {
    let client = async_nats::connect(p.nats.url()).await?;
    let js = async_nats::jetstream::new(client);
    let mut s = js.get_stream(stream).await?;
    Ok(s.info().await?.state.last_sequence)
}

const NOTES_V1: &str = "# Budget review\n\nAlice Martin from Acme Corporation presented the 2025 budget in Geneva.\n\n## Decisions\n\nThe board approved the solar panel project. Bob Chen will follow up with Acme Corporation.\n";
const NOTES_V2: &str = "# Budget review (revised)\n\nAlice Martin from Acme Corporation presented the revised 2025 budget in Geneva.\n\n## Decisions\n\nThe board postponed the solar panel project to March 2026.\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folder_changes_converge_in_both_stores() -> anyhow::Result<()> {
    let mut p = Pipeline::new().await?;
    let dir = p.watch_dir.path().to_path_buf();
    std::fs::write(dir.join("notes.md"), NOTES_V1)?;
    std::fs::write(dir.join("plain.txt"), "Field report from Lyon.\n\nThe water pumps in the north district were repaired by the city engineers.\n")?;
    let transcript = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/corpus/transcripts/ES2006a.txt"
    ))?;
    std::fs::create_dir(dir.join("meetings"))?;
    std::fs::write(dir.join("meetings/kickoff.txt"), &transcript)?;
    p.start_all()?;

    // 1. Three new files: both stores hold exactly them, and agree chunk for chunk.
    let (pg, graph) = p
        .wait_for("three documents", WAIT, |s| {
            s.len() == 3 && s.iter().all(|x| x.status == "ok" && x.chunks > 0)
        })
        .await?;
    assert_eq!(pg, graph, "postgres and the graph disagree");
    assert_eq!(
        source_paths(&p).await?,
        vec!["meetings/kickoff.txt", "notes.md", "plain.txt"]
    );
    assert!(find(&pg, "meetings/kickoff.txt")
        .map(|s| s.chunks > 3 && s.mentions > 0)
        .unwrap_or(false));

    // 2. The seed's Phase 5 SQL, verbatim, through psql.
    let counts = psql_file(&p.postgres_url, "phase5_counts.sql").await?;
    assert_eq!(counts.len(), 4, "{counts:?}");
    for row in &counts {
        let n: i64 = row.rsplit('|').next().unwrap_or("0").parse()?;
        assert!(n > 0, "empty table in Phase 5 counts: {counts:?}");
    }
    let coverage = psql_file(&p.postgres_url, "phase5_embeddings.sql").await?;
    assert!(
        coverage[0].ends_with("|100.00"),
        "embedding coverage: {coverage:?}"
    );
    let search = psql_file(&p.postgres_url, "phase5_search.sql").await?;
    assert_eq!(search.len(), 5, "vector search: {search:?}");
    let top_similarity: f64 = search[0].rsplit('|').next().unwrap_or("0").parse()?;
    assert!(
        (top_similarity - 1.0).abs() < 1e-3,
        "the sample chunk is its own nearest neighbour: {search:?}"
    );

    // 3. An edit arrives as version 2 in both stores.
    let before = find(&pg, "notes.md")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("notes.md missing"))?;
    write_atomic(&dir, "notes.md", NOTES_V2)?;
    let (pg, graph) = p
        .wait_for("notes.md version 2", WAIT, |s| {
            find(s, "notes.md").map(|x| x.version == 2).unwrap_or(false)
        })
        .await?;
    assert_eq!(pg, graph);
    let after = find(&pg, "notes.md")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("notes.md missing"))?;
    assert_ne!(
        before.chunk_digest, after.chunk_digest,
        "new text, new chunks"
    );

    // 4. A delete removes the document from both stores.
    std::fs::remove_file(dir.join("plain.txt"))?;
    let (pg, graph) = p
        .wait_for("plain.txt deleted", WAIT, |s| s.len() == 2)
        .await?;
    assert_eq!(pg, graph);
    assert_eq!(
        source_paths(&p).await?,
        vec!["meetings/kickoff.txt", "notes.md"]
    );

    // 5. Restarting the watcher republishes nothing unchanged.
    let source_seq = stream_last_seq(&p, "KB_SOURCE").await?;
    let mirror_seq = stream_last_seq(&p, "KB_MIRROR").await?;
    p.stop("watcher")?;
    p.start("watcher")?;
    tokio::time::sleep(Duration::from_secs(8)).await; // start-up scan plus a periodic rescan (3 s)
    assert_eq!(
        stream_last_seq(&p, "KB_SOURCE").await?,
        source_seq,
        "watcher republished unchanged files"
    );
    assert_eq!(stream_last_seq(&p, "KB_MIRROR").await?, mirror_seq);

    // 6. A file deleted while the watcher is down is noticed when it comes back.
    p.stop("watcher")?;
    std::fs::remove_file(dir.join("notes.md"))?;
    p.start("watcher")?;
    let (pg, graph) = p
        .wait_for("notes.md deleted while down", WAIT, |s| s.len() == 1)
        .await?;
    assert_eq!(pg, graph);
    assert_eq!(source_paths(&p).await?, vec!["meetings/kickoff.txt"]);

    // 7. Every service stops cleanly on SIGTERM.
    for s in kb_e2e::SERVICES {
        p.stop(s)?;
    }
    Ok(())
}
