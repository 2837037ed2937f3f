//! Rebuilding and rolling back stores from the mirror stream, with the real binaries:
//! `kb replay` into new, empty databases yields exactly the live stores, and a writer switched
//! off (`enabled = false`) consumes nothing, then catches up by itself when switched back on.

#[path = "writers/mod.rs"]
mod writers;

use kb_e2e::{write_atomic, Pipeline};
use kb_store::{MirrorStore, SourceSummary};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use writers::*;

const WAIT: Duration = Duration::from_secs(300);

const NOTES: &str = "# Budget review\n\nAlice Martin from Acme Corporation presented the 2025 budget in Geneva.\n\n## Decisions\n\nThe board approved the solar panel project. Bob Chen will follow up with Acme Corporation.\n";
const NOTES_V2: &str = "# Budget review (revised)\n\nAlice Martin presented the revised budget in Geneva.\n\nThe board postponed the solar panel project to March 2026.\n";
const REPORT: &str = "Field report from Lyon.\n\nThe water pumps in the north district were repaired by the city engineers. Maria Lopez from Veolia inspected them on Tuesday.\n";
const STANDUP: &str = "# Standup\n\nMaria Lopez reviewed the release plan with the Berlin team. Tom Weber raised the database migration risk.\n";

fn sid(path: &str) -> String {
    kb_core::ids::source_id("folder:inbox", path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_into_new_databases_equals_the_live_stores() -> anyhow::Result<()> {
    let mut p = Pipeline::new().await?;
    let dir = p.watch_dir.path().to_path_buf();
    std::fs::write(dir.join("notes.md"), NOTES)?;
    std::fs::write(dir.join("report.txt"), REPORT)?;
    std::fs::write(dir.join("standup.md"), STANDUP)?;
    std::fs::write(dir.join("empty.txt"), " \n")?;
    p.start_all()?;
    p.wait_for("four sources", WAIT, |s| s.len() == 4).await?;

    // History the log compacts away: an edit (v2) and a delete (a tombstone).
    write_atomic(&dir, "notes.md", NOTES_V2)?;
    std::fs::remove_file(dir.join("report.txt"))?;
    let notes = sid("notes.md");
    let (live_pg, live_graph) = p
        .wait_for("the edit and the delete", WAIT, |s| {
            s.len() == 3 && s.iter().any(|x| x.source_id == notes && x.version == 2)
        })
        .await?;
    assert_eq!(live_pg, live_graph);
    assert_eq!(
        live_pg.iter().filter(|s| s.status == "failed").count(),
        1,
        "{live_pg:?}"
    );
    let live_counts = p.postgres().await?.counts().await?;

    // Postgres, into a new empty database: schema created, bulk mode, same state.
    let stack = kb_testkit::stack().await?;
    let new_pg = stack.fresh_postgres().await?;
    let out = kb_with(
        &p,
        &[("KB_POSTGRES_URL", &new_pg)],
        &["replay", "--store", "postgres", "--from-start", "--json"],
    )?;
    let report = json(&out)?;
    assert!(
        out.status.success(),
        "{report:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report["store"], "postgres");
    assert_eq!(
        report["messages"], 4,
        "the compacted log: 3 sources and 1 tombstone"
    );
    assert_eq!(
        (&report["written"], &report["deleted"], &report["failed"]),
        (&2.into(), &1.into(), &1.into()),
        "{report:#}"
    );
    assert_eq!(report["bulk"], true);
    assert_eq!(report["skipped"].as_array().map(Vec::len), Some(0));
    let replayed = kb_pg::PgStore::connect(&new_pg, DIMS, 2).await?;
    assert_eq!(replayed.summaries().await?, live_pg);
    assert_eq!(replayed.counts().await?, live_counts);
    assert!(
        replayed.has_vector_index().await?,
        "bulk mode ends with the index"
    );

    // The graph, into a new empty graph database.
    let new_graph = stack.fresh_graph().await?;
    let out = kb_with(
        &p,
        &[("KB_NEO4J__DATABASE", &new_graph.database)],
        &["replay", "--store", "graph", "--json"],
    )?;
    let report = json(&out)?;
    assert!(out.status.success(), "{report:#}");
    assert_eq!(report["messages"], 4);
    let graph = kb_graph::GraphStore::connect(&kb_graph::GraphConfig {
        uri: new_graph.uri.clone(),
        user: new_graph.user.clone(),
        password: new_graph.password.clone(),
        database: Some(new_graph.database.clone()),
        max_connections: 2,
    })
    .await?;
    assert_eq!(graph.summaries().await?, live_graph);

    // The two rebuilt stores agree as `kb verify` checks it (Phase 5 included).
    let out = kb_with(
        &p,
        &[
            ("KB_POSTGRES_URL", &new_pg),
            ("KB_NEO4J__DATABASE", &new_graph.database),
        ],
        &["verify", "--json"],
    )?;
    let verify = json(&out)?;
    assert!(out.status.success(), "{verify:#}");
    assert_eq!(verify["sources_compared"], 3);

    // Replaying again into a filled store is a no-op: everything is already current.
    let out = kb_with(
        &p,
        &[("KB_POSTGRES_URL", &new_pg)],
        &["replay", "--store", "postgres", "--json"],
    )?;
    let again = json(&out)?;
    assert!(out.status.success(), "{again:#}");
    assert_eq!(
        (&again["bulk"], &again["stale"]),
        (&false.into(), &4.into())
    );
    assert_eq!(replayed.summaries().await?, live_pg);

    // Bad input is refused before anything is read.
    let out = kb_with(
        &p,
        &[],
        &["replay", "--store", "postgres", "--since", "yesterday"],
    )?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since"));
    Ok(())
}

fn summaries_by_id(s: &[SourceSummary]) -> Vec<(String, u64)> {
    s.iter().map(|x| (x.source_id.clone(), x.version)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_writer_consumes_nothing_and_catches_up_when_enabled() -> anyhow::Result<()> {
    let mut p = Pipeline::new().await?;
    let dir = p.watch_dir.path().to_path_buf();
    std::fs::write(dir.join("notes.md"), NOTES)?;
    p.start_all()?;
    p.wait_for("notes.md", WAIT, |s| s.len() == 1).await?;

    // The rollback switch: pg-writer restarted with postgres.enabled = false.
    p.stop("pg-writer")?;
    let js = jetstream(&p).await?;
    let before = js.topo.mirror.consumer_info("pg-writer").await?;
    let log = std::fs::File::create(p.log_dir.path().join("pg-writer-disabled.log"))?;
    let mut disabled = Command::new(kb_e2e::bin_dir().join("kb-pg-writer"))
        .envs(p.env())
        .env_remove("KB_CONFIG")
        .env("KB_POSTGRES__ENABLED", "false")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;

    write_atomic(&dir, "notes.md", NOTES_V2)?;
    write_atomic(&dir, "standup.md", STANDUP)?;
    let graph = p.graph_store().await?;
    let deadline = Instant::now() + WAIT;
    let in_graph = loop {
        let s = graph.summaries().await?;
        if s.len() == 2
            && s.iter()
                .all(|x| x.version == if x.source_id == sid("notes.md") { 2 } else { 1 })
        {
            break s;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the graph did not get the changes: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Idle, alive, and its durable consumer has not moved; Postgres still holds the old state.
    assert!(
        disabled.try_wait()?.is_none(),
        "a disabled writer must keep running"
    );
    let idle = js.topo.mirror.consumer_info("pg-writer").await?;
    assert_eq!(
        idle.delivered.stream_sequence,
        before.delivered.stream_sequence
    );
    assert_eq!(idle.num_ack_pending, 0);
    assert!(idle.num_pending >= 2, "{idle:?}");
    let pg = p.postgres().await?;
    let old = pg.summaries().await?;
    assert_eq!(summaries_by_id(&old), vec![(sid("notes.md"), 1)]);

    // Switched back on: it catches up from its durable position with nothing else to do.
    Command::new("kill")
        .args(["-TERM", &disabled.id().to_string()])
        .status()?;
    let status = disabled.wait()?;
    assert!(
        status.success(),
        "the disabled writer did not stop cleanly: {status}"
    );
    p.start("pg-writer")?;
    let (pg_now, graph_now) = p
        .wait_for("postgres caught up", WAIT, |s| {
            summaries_by_id(s) == summaries_by_id(&in_graph)
        })
        .await?;
    assert_eq!(pg_now, graph_now);
    for s in kb_e2e::SERVICES {
        p.stop(s)?;
    }
    Ok(())
}
