//! Poison at scale: among 500 documents, 1 % abort their parse worker, never return, or
//! exceed a limit. Each becomes one dead letter and a `FAILED` record in both stores; every
//! other document arrives exactly. The healthy documents' throughput is printed
//! (`KB_POISON_BASELINE=1` runs the same 500 without poison, for the comparison in
//! docs/benchmarks.md): a figure to read, not a timed assertion.

#[path = "faults/corpus.rs"]
mod corpus;
#[path = "faults/expect.rs"]
#[allow(dead_code)] // the fault suite's comparison; this test compares its own way
mod expect;

use corpus::Corpus;
use kb_e2e::{write_atomic, Pipeline};
use kb_store::MirrorStore;
use kb_stream::subjects;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const DOCUMENTS: usize = 500;
const CONVERGE: Duration = Duration::from_secs(300);

/// The poison: (relative path, what it does to the parser, the dead letter it must end as).
const POISON: [(&str, &str, &str); 5] = [
    ("poison/abort-1.txt", "abort", "crashed"),
    ("poison/abort-2.md", "abort", "crashed"),
    ("poison/hang-1.txt", "spin", "timeout"),
    ("poison/hang-2.md", "spin", "timeout"),
    ("poison/huge.txt", "", "too_large"),
];
/// `parser.max_bytes` in this test: the healthy notes are a few KB, `huge.txt` is over it.
const MAX_BYTES: usize = 64 * 1024;

/// Dead letters by source id: (stage, error kind).
async fn dead_letters(p: &Pipeline) -> anyhow::Result<BTreeMap<String, Vec<(String, String)>>> {
    use kb_proto::Message as _;
    let js = async_nats::jetstream::new(async_nats::connect(p.nats.url()).await?);
    let s = js.get_stream(subjects::DLQ_STREAM).await?;
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for seq in 1..=s.cached_info().state.last_sequence {
        let Ok(raw) = s.get_raw_message(seq).await else {
            continue;
        };
        let dl = kb_proto::DeadLetter::decode(raw.payload.as_ref())?;
        let sid = dl.source.map(|s| s.source_id).unwrap_or_default();
        out.entry(sid).or_default().push((dl.stage, dl.error_kind));
    }
    Ok(out)
}

/// Everything still missing or wrong; empty once both stores hold the healthy documents
/// exactly, each poison document as `failed`, and the dead letters are exactly the poison's.
async fn problems(
    p: &Pipeline,
    healthy: &expect::Expected,
    poison: &BTreeMap<String, &'static str>,
) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let dead = dead_letters(p).await?;
    for (sid, letters) in &dead {
        match poison.get(sid) {
            Some(kind)
                if letters.len() == 1 && letters[0] == ("parser".into(), kind.to_string()) => {}
            Some(kind) => out.push(format!(
                "{sid}: dead letters {letters:?}, want one parser {kind}"
            )),
            None => out.push(format!("healthy {sid} dead-lettered: {letters:?}")),
        }
    }
    for (sid, kind) in poison {
        if !dead.contains_key(sid) {
            out.push(format!("no {kind} dead letter yet for {sid}"));
        }
    }
    let pg = p.postgres().await?;
    let graph = p.graph_store().await?;
    for (name, summaries, counts) in [
        ("postgres", pg.summaries().await?, pg.counts().await?),
        ("graph", graph.summaries().await?, graph.counts().await?),
    ] {
        let mut seen = 0;
        for s in &summaries {
            if poison.contains_key(&s.source_id) {
                if s.status != "failed" || s.chunks != 0 {
                    out.push(format!(
                        "{name}: poison {} is {} with {} chunks",
                        s.source_id, s.status, s.chunks
                    ));
                }
                continue;
            }
            match healthy.sources.get(&s.source_id) {
                // One version each here: the version is whatever the watcher gave.
                Some(e)
                    if *s
                        == (kb_store::SourceSummary {
                            version: s.version,
                            ..e.clone()
                        }) =>
                {
                    seen += 1
                }
                Some(_) => out.push(format!("{name}: {} differs", s.source_id)),
                None => out.push(format!("{name}: unexpected {}", s.source_id)),
            }
        }
        if seen != healthy.sources.len() {
            out.push(format!(
                "{name}: {seen} of {} healthy documents",
                healthy.sources.len()
            ));
        }
        let want = &healthy.counts;
        if counts.failed_sources != poison.len() as u64
            || counts.chunks != want.chunks
            || counts.chunks_with_embeddings != want.chunks
            || counts.entities != want.entities
            || counts.mentions != want.mentions
        {
            out.push(format!(
                "{name}: counts {counts:?}, want {want:?} and {} failed",
                poison.len()
            ));
        }
    }
    Ok(out)
}

/// Healthy documents in both stores, counted by the slower store.
async fn healthy_in_both(
    p: &Pipeline,
    poison: &BTreeMap<String, &'static str>,
) -> anyhow::Result<usize> {
    let ok = |list: Vec<kb_store::SourceSummary>| {
        list.iter()
            .filter(|s| s.status == "ok" && !poison.contains_key(&s.source_id))
            .count()
    };
    let pg = ok(p.postgres().await?.summaries().await?);
    let graph = ok(p.graph_store().await?.summaries().await?);
    Ok(pg.min(graph))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_percent_poison_is_dead_lettered_and_the_rest_arrives() -> anyhow::Result<()> {
    let baseline = std::env::var_os("KB_POISON_BASELINE").is_some();
    let mut p = Pipeline::new().await?;
    let healthy_dir = tempfile::tempdir()?;
    let dir = p.watch_dir.path().to_path_buf();
    let mut corpus = Corpus::new(0x5eed_0100);
    let healthy_n = if baseline {
        DOCUMENTS
    } else {
        DOCUMENTS - POISON.len()
    };
    for _ in 0..healthy_n {
        let (rel, text) = corpus.doc();
        write_atomic(&dir, &rel, &text)?;
        write_atomic(healthy_dir.path(), &rel, &text)?;
    }
    let healthy = expect::expected(healthy_dir.path())?;
    let mut poison = BTreeMap::new();
    let mut rules = Vec::new();
    if !baseline {
        for (rel, action, kind) in POISON {
            let text = if action.is_empty() {
                "too much text. ".repeat(MAX_BYTES / 10)
            } else {
                corpus.text(rel.ends_with(".md"))
            };
            write_atomic(&dir, rel, &text)?;
            let sid = expect::sid(rel);
            if !action.is_empty() {
                rules.push(format!("parser.parse={action}@{sid}"));
            }
            poison.insert(sid, kind);
        }
    }
    // The parse runs in worker processes: an abort or a runaway parse takes only its worker.
    for (key, value) in [
        ("KB_PARSER__ISOLATION", "process".to_string()),
        ("KB_PARSER__TIMEOUT_SECS", "3".to_string()),
        ("KB_PARSER__ACK_WAIT_SECS", "10".to_string()),
        ("KB_PARSER__MAX_BYTES", MAX_BYTES.to_string()),
        (kb_core::failpoint::ENV, rules.join(";")),
    ] {
        p.set_env("parser", key, &value);
    }

    let started = Instant::now();
    p.start_all()?;
    let deadline = started + CONVERGE;
    let mut all_healthy_at = None;
    loop {
        // Errors (the writers have not made the schema yet) count as not there yet.
        if all_healthy_at.is_none() && healthy_in_both(&p, &poison).await.unwrap_or(0) == healthy_n
        {
            all_healthy_at = Some(started.elapsed());
        }
        let left = problems(&p, &healthy, &poison)
            .await
            .unwrap_or_else(|e| vec![format!("{e:#}")]);
        if left.is_empty() && all_healthy_at.is_some() {
            break;
        }
        let exited = p.exited();
        anyhow::ensure!(
            exited.is_empty(),
            "services exited: {exited:?}\n{}",
            p.logs()
        );
        anyhow::ensure!(
            Instant::now() < deadline,
            "no convergence after {CONVERGE:?}: {} problems, first: {:#?}\n{}",
            left.len(),
            left.iter().take(10).collect::<Vec<_>>(),
            p.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let took = all_healthy_at.unwrap_or_else(|| started.elapsed());
    eprintln!(
        "poison: {} of {DOCUMENTS} documents poisoned; {healthy_n} healthy documents in both stores \
         after {:.1}s = {:.1} documents/s; every poison document dead-lettered after {:.1}s",
        poison.len(),
        took.as_secs_f64(),
        healthy_n as f64 / took.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
