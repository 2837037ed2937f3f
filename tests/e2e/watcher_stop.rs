//! A watcher stopped between publishing a version and recording it (issue 15, item 1): the
//! real watcher binary exits right after its publish (a failpoint), the file changes, and the
//! restarted watcher must publish the new content under a new version, so both stores end with
//! it. Before versions were reserved first, the restart published the new content under the
//! same version, deduplication dropped it, and both stores kept the old content for good.

use kb_e2e::{write_atomic, Pipeline};
use kb_store::SourceSummary;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(180);

fn sid(path: &str) -> String {
    kb_core::ids::source_id("folder:inbox", path)
}

fn at(s: &[SourceSummary], version: u64) -> bool {
    s.iter()
        .any(|x| x.source_id == sid("notes.md") && x.version == version && x.status == "ok")
}

async fn pg_content_hash(p: &Pipeline) -> anyhow::Result<(i64, String)> {
    let pg = p.postgres().await?;
    Ok(
        sqlx::query_as("SELECT version, content_hash FROM sources WHERE source_id = $1")
            .bind(sid("notes.md"))
            .fetch_one(pg.pool())
            .await?,
    )
}

const FIRST: &str = "# Budget\n\nAlice Martin presented the 2025 budget in Geneva.\n";
const SECOND: &str = "# Budget\n\nAlice Martin presented the revised budget in Geneva.\n";
const THIRD: &str = "# Budget\n\nBob Chen postponed the solar panel project to March.\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_stopped_after_publishing_never_loses_the_next_change() -> anyhow::Result<()> {
    let mut p = Pipeline::new().await?;
    for s in ["parser", "embedder", "pg-writer", "graph-writer", "watcher"] {
        p.start(s)?;
    }
    write_atomic(p.watch_dir.path(), "notes.md", FIRST)?;
    p.wait_for("version 1", WAIT, |s| at(s, 1)).await?;
    p.stop("watcher")?;

    // The next version goes out, and the watcher dies before recording it.
    write_atomic(p.watch_dir.path(), "notes.md", SECOND)?;
    p.start_instance(
        "watcher",
        "watcher-dies",
        &[(
            "KB_FAILPOINTS".to_string(),
            "watcher.after_publish=1*exit(3)@notes.md".to_string(),
        )],
    )?;
    let deadline = Instant::now() + WAIT;
    while !p.exited().iter().any(|(name, _)| *name == "watcher-dies") {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the watcher never reached its publish\n{}",
            p.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Changed again while it was down: the restarted watcher publishes it as version 3.
    write_atomic(p.watch_dir.path(), "notes.md", THIRD)?;
    p.start("watcher")?;
    let (pg, graph) = p.wait_for("version 3", WAIT, |s| at(s, 3)).await?;
    let (version, hash) = pg_content_hash(&p).await?;
    assert_eq!(version, 3);
    assert_eq!(hash, kb_core::ids::content_hash(THIRD.as_bytes()));
    assert_eq!(pg, graph, "both stores hold the same version of it");
    Ok(())
}
