//! Fault injection: while a few hundred generated documents flow through the five real
//! binaries, services are killed with SIGKILL and restarted (each consumer while a failpoint
//! holds it between finishing a message and acknowledging it), the broker is restarted and
//! crashed, the network between the services and the broker loses packets and then resets
//! every connection, and each store is taken away for 30 s. Afterwards both stores hold exactly the folder's documents,
//! chunks, entities and mentions (compared with a parse of the files, with each other, and by
//! `kb verify`), and while one store was away the other writer kept up with the mirror stream.
//!
//! Killed consumers' messages come back after the consumers' first backoff step (60 s), so
//! every scenario waits for the pipeline to go quiet before it compares.

#[path = "faults/corpus.rs"]
mod corpus;
#[path = "faults/expect.rs"]
mod expect;

use corpus::Corpus;
use expect::Expected;
use kb_e2e::{write_atomic, Pipeline};
use kb_store::MirrorStore;
use kb_stream::{subjects, Stage};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Longest a scenario may take to converge after its last fault (redelivery alone is 60 s).
const CONVERGE: Duration = Duration::from_secs(300);
/// How long a store stays away.
const OUTAGE: Duration = Duration::from_secs(30);
/// How far behind the mirror stream the other writer may be at the end of an outage. The store
/// is still down while this runs, so a writer held up by it would never catch up; the margin is
/// only for a busy machine (two outage scenarios, each a whole pipeline, run side by side).
const KEEP_PACE: Duration = Duration::from_secs(30);

/// Writes `n` new documents, `every` apart.
async fn feed(p: &Pipeline, corpus: &mut Corpus, n: usize, every: Duration) -> anyhow::Result<()> {
    for _ in 0..n {
        let (rel, text) = corpus.doc();
        write_atomic(p.watch_dir.path(), &rel, &text)?;
        if !every.is_zero() {
            tokio::time::sleep(every).await;
        }
    }
    Ok(())
}

async fn jetstream(p: &Pipeline) -> anyhow::Result<async_nats::jetstream::Context> {
    Ok(async_nats::jetstream::new(
        async_nats::connect(p.nats.url()).await?,
    ))
}

/// The version the mirror stream (the log of record) holds for each source.
async fn mirror_heads(p: &Pipeline, ids: &[String]) -> anyhow::Result<BTreeMap<String, u64>> {
    let (_client, js) = kb_stream::connect(&p.nats.url(), "faults-test").await?;
    let topo = kb_stream::topology::ensure(&js).await?;
    let publisher = kb_stream::Publisher::new(&topo, 256 * 1024);
    let mut heads = BTreeMap::new();
    for id in ids {
        heads.insert(id.clone(), publisher.mirror_version(id).await?);
    }
    Ok(heads)
}

/// Messages still waiting or unacknowledged, per consumer; all zero once the pipeline is quiet.
async fn backlog(p: &Pipeline) -> anyhow::Result<Vec<(&'static str, u64, usize)>> {
    let js = jetstream(p).await?;
    let mut out = Vec::new();
    for (stream, consumer) in [
        (subjects::SOURCE_STREAM, Stage::Parser.as_str()),
        (subjects::PARSED_STREAM, Stage::Embedder.as_str()),
        (subjects::MIRROR_STREAM, Stage::PgWriter.as_str()),
        (subjects::MIRROR_STREAM, Stage::GraphWriter.as_str()),
    ] {
        let s = js.get_stream(stream).await?;
        let info = s.consumer_info(consumer).await?;
        out.push((consumer, info.num_pending, info.num_ack_pending));
    }
    Ok(out)
}

/// Every file here parses and every store comes back, so any dead letter is a lost document.
async fn dead_letters(p: &Pipeline) -> anyhow::Result<Vec<String>> {
    use kb_proto::Message as _;
    let js = jetstream(p).await?;
    let s = js.get_stream(subjects::DLQ_STREAM).await?;
    let mut out = Vec::new();
    let last = s.cached_info().state.last_sequence;
    for seq in 1..=last {
        let Ok(raw) = s.get_raw_message(seq).await else {
            continue;
        };
        let dl = kb_proto::DeadLetter::decode(raw.payload.as_ref())?;
        out.push(format!(
            "dead letter from {} ({}): {} [{}]",
            dl.stage,
            dl.error_kind,
            dl.reason,
            dl.source.map(|s| s.path).unwrap_or_default()
        ));
    }
    Ok(out)
}

/// Sources on the mirror stream (one message per source).
async fn mirror_sources(p: &Pipeline) -> anyhow::Result<u64> {
    let js = jetstream(p).await?;
    let mut s = js.get_stream(subjects::MIRROR_STREAM).await?;
    Ok(s.info().await?.state.messages)
}

async fn pg_sources(p: &Pipeline) -> anyhow::Result<u64> {
    Ok(p.postgres().await?.counts().await?.sources)
}

async fn graph_sources(p: &Pipeline) -> anyhow::Result<u64> {
    Ok(p.graph_store().await?.counts().await?.sources)
}

/// Waits until the pipeline is quiet and both stores hold exactly what the folder says, with
/// every source at the version of the mirror stream; then `kb verify` must agree.
async fn converge_exactly(p: &mut Pipeline, scenario: &str) -> anyhow::Result<()> {
    let expected = expect::expected(p.watch_dir.path())?;
    let ids: Vec<String> = expected.sources.keys().cloned().collect();
    let started = Instant::now();
    let deadline = started + CONVERGE;
    loop {
        let problems = differences(p, &expected, &ids).await;
        let exited = p.exited();
        if !exited.is_empty() {
            anyhow::bail!(
                "{scenario}: services exited on their own: {exited:?}\n{}",
                p.logs()
            );
        }
        if let Ok(list) = &problems {
            let dead: Vec<&String> = list
                .iter()
                .filter(|d| d.starts_with("dead letter"))
                .collect();
            if !dead.is_empty() {
                keep_logs(p, scenario);
                anyhow::bail!("{scenario}: documents were dead-lettered:\n  {dead:#?}");
            }
        }
        match problems {
            Ok(problems) if problems.is_empty() => break,
            problems if Instant::now() > deadline => {
                let problems = match problems {
                    Ok(list) => list.join("\n  "),
                    Err(e) => format!("{e:#}"),
                };
                keep_logs(p, scenario);
                anyhow::bail!(
                    "{scenario}: no convergence after {CONVERGE:?}:\n  {problems}\n{}",
                    p.logs()
                );
            }
            problems => {
                if std::env::var_os("KB_FAULTS_TRACE").is_some() {
                    let brief = match &problems {
                        Ok(list) => format!(
                            "{} problems, first: {:?}",
                            list.len(),
                            list.iter().take(6).collect::<Vec<_>>()
                        ),
                        Err(e) => format!("{e:#}"),
                    };
                    eprintln!(
                        "[{:>5.1}s] {scenario}: {brief}",
                        started.elapsed().as_secs_f64()
                    );
                }
                tokio::time::sleep(Duration::from_secs(1)).await
            }
        }
    }
    eprintln!(
        "{scenario}: {} sources converged {:.1}s after the last fault",
        ids.len(),
        started.elapsed().as_secs_f64()
    );
    let (pg, graph) = (
        p.postgres().await?.summaries().await?,
        p.graph_store().await?.summaries().await?,
    );
    assert_eq!(pg, graph, "{scenario}: the stores disagree");
    let out = p.kb(&["verify", "--json"])?;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert!(
        out.status.success() && report["ok"] == true,
        "{scenario}: kb verify failed: {report:#}"
    );
    assert_eq!(
        report["sources_compared"].as_u64(),
        Some(ids.len() as u64),
        "{report:#}"
    );
    Ok(())
}

/// With `KB_FAULTS_KEEP_LOGS=DIR`, the services' whole logs are copied to DIR/<scenario>/ (the
/// failure message only has their tails).
fn keep_logs(p: &Pipeline, scenario: &str) {
    let Some(dir) = std::env::var_os("KB_FAULTS_KEEP_LOGS") else {
        return;
    };
    let dir = std::path::Path::new(&dir).join(scenario.replace(' ', "_"));
    if std::fs::create_dir_all(&dir).is_ok() {
        for s in kb_e2e::SERVICES {
            let _ = std::fs::write(dir.join(format!("{s}.log")), p.log_of(s));
        }
        eprintln!("{scenario}: logs kept in {}", dir.display());
    }
}

/// Like [`keep_logs`], for a server's log.
fn keep_file(path: &std::path::Path, scenario: &str) {
    if let Some(dir) = std::env::var_os("KB_FAULTS_KEEP_LOGS") {
        let dir = std::path::Path::new(&dir).join(scenario.replace(' ', "_"));
        if let (Ok(()), Some(name)) = (std::fs::create_dir_all(&dir), path.file_name()) {
            let _ = std::fs::copy(path, dir.join(name));
        }
    }
}

/// Every way the stores differ from `expected`, or an error if something cannot be read;
/// empty when both match exactly and no consumer has work left.
async fn differences(
    p: &Pipeline,
    expected: &Expected,
    ids: &[String],
) -> anyhow::Result<Vec<String>> {
    let mut out = dead_letters(p).await?;
    for (consumer, pending, unacked) in backlog(p).await? {
        if pending > 0 || unacked > 0 {
            out.push(format!(
                "{consumer}: {pending} waiting, {unacked} unacknowledged"
            ));
        }
    }
    let heads = mirror_heads(p, ids).await?;
    let pg = p.postgres().await?;
    let graph = p.graph_store().await?;
    for (name, summaries, counts) in [
        ("postgres", pg.summaries().await?, pg.counts().await?),
        ("graph", graph.summaries().await?, graph.counts().await?),
    ] {
        out.extend(
            expected
                .differences(&summaries, &heads)
                .into_iter()
                .map(|d| format!("{name}: {d}")),
        );
        out.extend(expected.count_differences(name, &counts));
    }
    Ok(out)
}

/// Waits until `store` (read by `count`) holds at least `n` sources.
async fn wait_sources<F, Fut>(what: &str, n: u64, count: F) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<u64>>,
{
    let deadline = Instant::now() + CONVERGE;
    loop {
        match count().await {
            Ok(have) if have >= n => return Ok(()),
            have if Instant::now() > deadline => {
                anyhow::bail!("{what}: fewer than {n} sources after {CONVERGE:?}: {have:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// The consumers whose kill window a failpoint holds open: a message handled (output published,
/// or store committed) and not yet acknowledged.
const CONSUMERS: [&str; 4] = ["parser", "embedder", "pg-writer", "graph-writer"];
/// The failpoint in the consume loop between a handler's success and its ack.
const BEFORE_ACK: &str = "consume.before_ack";

/// Waits until the running `service` process sits paused at [`BEFORE_ACK`] (its pid in the hit
/// file): proof that killing it now kills work that is done but not acknowledged.
async fn wait_paused_before_ack(
    p: &Pipeline,
    dir: &std::path::Path,
    service: &str,
) -> anyhow::Result<()> {
    let pid = p
        .pid(service)
        .ok_or_else(|| anyhow::anyhow!("{service} is not running"))?;
    let hit_file = kb_core::failpoint::hit_path(dir, BEFORE_ACK);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let hits = std::fs::read_to_string(&hit_file).unwrap_or_default();
        if hits
            .lines()
            .any(|l| l.split_whitespace().next() == Some(pid.to_string().as_str()))
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "{service} (pid {pid}) never paused before an ack\n{}",
                p.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_service_killed_mid_stream_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    let failpoints = tempfile::tempdir()?;
    let mut p = Pipeline::new().await?;
    // Each consumer process pauses before acking its first message, and is killed there.
    for service in CONSUMERS {
        p.set_env(
            service,
            kb_core::failpoint::ENV,
            &format!("{BEFORE_ACK}=1*pause"),
        );
        p.set_env(
            service,
            kb_core::failpoint::DIR_ENV,
            &failpoints.path().display().to_string(),
        );
    }
    let mut corpus = Corpus::new(0x5eed_0001);
    feed(&p, &mut corpus, 100, Duration::ZERO).await?;
    p.start_all()?;

    for service in kb_e2e::SERVICES {
        // New files keep arriving while each one dies.
        feed(&p, &mut corpus, 25, Duration::from_millis(60)).await?;
        if service != "watcher" {
            wait_paused_before_ack(&p, failpoints.path(), service).await?;
        }
        // The watcher has no consumer: it dies while files arrive (its own window, between
        // publishing a version and recording it, has a test of its own in the watcher).
        p.kill9(service)?;
        p.clear_env(service);
        p.start(service)?;
    }
    converge_exactly(&mut p, "kill -9 of every service").await
}

/// Every service reaches the broker through a proxy. The network between them first loses
/// every packet (the services' connections hang, as after a cable pull), then resets every
/// connection: nothing is lost or duplicated, and the pipeline converges within the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_cut_from_the_broker_lose_and_duplicate_nothing() -> anyhow::Result<()> {
    let mut p = Pipeline::new().await?;
    let upstream: std::net::SocketAddr = format!("127.0.0.1:{}", p.nats.port()).parse()?;
    let proxy = kb_testkit::TcpProxy::start(upstream).await?;
    p.route_services_nats(proxy.rewrite_url(&p.nats.url()));
    let mut corpus = Corpus::new(0x5eed_0005);
    feed(&p, &mut corpus, 60, Duration::ZERO).await?;
    p.start_all()?;
    wait_sources("first documents", 10, || pg_sources(&p))
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}\n{}", p.logs()))?;

    // Packets lost for 15 s while files keep arriving.
    feed(&p, &mut corpus, 10, Duration::from_millis(50)).await?;
    let dropped_before = proxy.stats().dropped_bytes;
    proxy.blackhole();
    feed(&p, &mut corpus, 20, Duration::from_millis(100)).await?;
    proxy
        .wait_dropped(dropped_before + 1, Duration::from_secs(15))
        .await?;
    tokio::time::sleep(Duration::from_secs(15)).await;
    proxy.pass().await?;

    // Then every connection reset while work is in flight.
    feed(&p, &mut corpus, 20, Duration::from_millis(50)).await?;
    let cut = proxy.cut().await;
    assert!(
        cut > 0,
        "no connection to cut: the services are not behind the proxy"
    );
    feed(&p, &mut corpus, 10, Duration::from_millis(50)).await?;
    converge_exactly(&mut p, "services cut from the broker").await
}

/// Drops the OS page cache (`/proc/sys/vm/drop_caches`), so the restarted broker reads its
/// store from the disk, not from memory the killed process left behind; or says why it cannot
/// (a container without write access to `/proc/sys`). Dirty pages are written back, not
/// dropped: this is not a power loss, which no test here can make.
fn drop_os_cache() -> Result<(), String> {
    std::fs::write("/proc/sys/vm/drop_caches", "3")
        .map_err(|e| format!("cannot write /proc/sys/vm/drop_caches: {e}"))
}

/// The broker with `sync = "always"` (every acknowledged write flushed to disk before its
/// acknowledgement) is stopped, then killed while edits are in flight, and restarted after
/// the OS cache is dropped where the machine allows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_and_crash_mid_stream_lose_and_duplicate_nothing() -> anyhow::Result<()> {
    let nats = kb_testkit::stack()
        .await?
        .nats_with(kb_testkit::NatsConfig {
            sync_interval: Some(kb_core::settings::NatsSync::Always.sync_interval().into()),
            ..Default::default()
        })
        .await?;
    let mut p = Pipeline::with_nats(nats).await?;
    let mut corpus = Corpus::new(0x5eed_0002);
    feed(&p, &mut corpus, 80, Duration::ZERO).await?;
    p.start_all()?;
    wait_sources("first documents", 20, || pg_sources(&p))
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}\n{}", p.logs()))?;

    // New files, edits and deletes in flight when the broker goes away.
    let dir = p.watch_dir.path().to_path_buf();
    let existing = expect::expected(&dir)?
        .paths
        .into_values()
        .collect::<Vec<_>>();
    for (i, rel) in existing.iter().take(30).enumerate() {
        if i % 2 == 0 {
            write_atomic(&dir, rel, &corpus.text(rel.ends_with(".md")))?;
        } else {
            std::fs::remove_file(dir.join(rel))?;
        }
    }
    feed(&p, &mut corpus, 40, Duration::from_millis(20)).await?;
    p.nats.stop().await?;
    // Changes while the broker is down are found by the watcher's next scan.
    feed(&p, &mut corpus, 20, Duration::from_millis(100)).await?;
    std::fs::remove_file(dir.join(&existing[31]))?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    p.nats.start().await?;
    feed(&p, &mut corpus, 20, Duration::from_millis(50)).await?;

    // Then the broker crashes (no shutdown, nothing flushed) while edits are in flight.
    for rel in &existing[32..42] {
        write_atomic(&dir, rel, &corpus.text(rel.ends_with(".md")))?;
    }
    // The window: the broker has acknowledged some of these edits (the mirror grew) and work
    // is still queued or in flight when it dies.
    let mirror_before = jetstream(&p)
        .await?
        .get_stream(subjects::MIRROR_STREAM)
        .await?
        .cached_info()
        .state
        .last_sequence;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let js = jetstream(&p).await?;
        let mirror = js.get_stream(subjects::MIRROR_STREAM).await?;
        let acked = mirror.cached_info().state.last_sequence > mirror_before;
        let busy = backlog(&p).await?.iter().any(|(_, w, u)| *w > 0 || *u > 0);
        if acked && busy {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "never saw an acknowledged edit with work still in flight (acked {acked}, busy {busy})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    p.nats.kill9()?;
    match drop_os_cache() {
        Ok(()) => eprintln!("broker crash: OS cache dropped before the restart"),
        Err(why) => eprintln!("broker crash: OS cache not dropped ({why})"),
    }
    feed(&p, &mut corpus, 10, Duration::from_millis(100)).await?;
    p.nats.start().await?;
    feed(&p, &mut corpus, 10, Duration::from_millis(50)).await?;
    converge_exactly(&mut p, "broker restart and crash").await
}

/// While one store is away for [`OUTAGE`] and documents keep arriving, its writer crashes and
/// is started again (it must wait for its store, not exit), and the other writer must keep up
/// with the mirror stream.
async fn outage<F, Fut>(
    p: &mut Pipeline,
    corpus: &mut Corpus,
    (down, down_writer): (&str, &'static str),
    other: &str,
    other_sources: F,
) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<u64>>,
{
    let mirror_before = mirror_sources(p).await?;
    let started = Instant::now();
    feed(p, corpus, 30, OUTAGE / 80).await?;
    p.kill9(down_writer)?;
    p.start(down_writer)?;
    feed(p, corpus, 30, OUTAGE / 80).await?;
    tokio::time::sleep(OUTAGE.saturating_sub(started.elapsed())).await;
    // The pipeline went on...
    let mirror = mirror_sources(p).await?;
    assert!(
        mirror >= mirror_before + 10,
        "with {down} down the mirror stream grew from {mirror_before} to {mirror} only\n{}",
        p.logs()
    );
    // ...and the other writer kept its pace: it soon holds what the mirror held.
    let deadline = Instant::now() + KEEP_PACE;
    loop {
        let have = other_sources().await?;
        if have >= mirror {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "with {down} down for {OUTAGE:?}, {other} holds {have} of the mirror's {mirror} sources\n{}",
            p.logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let exited = p.exited();
    assert!(
        exited.is_empty(),
        "services exited: {exited:?}\n{}",
        p.logs()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_for_30s_graph_keeps_pace_and_postgres_catches_up() -> anyhow::Result<()> {
    let stack = kb_testkit::stack().await?;
    let mut pg = stack.private_postgres().await?;
    let mut p = Pipeline::with_stores(pg.url(), stack.fresh_graph().await?).await?;
    let mut corpus = Corpus::new(0x5eed_0003);
    feed(&p, &mut corpus, 60, Duration::ZERO).await?;
    p.start_all()?;
    wait_sources("first documents", 10, || pg_sources(&p))
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}\n{}", p.logs()))?;

    pg.stop().await?;
    let graph = p.graph_store().await?;
    let count = || async { Ok(graph.counts().await?.sources) };
    outage(
        &mut p,
        &mut corpus,
        ("postgres", "pg-writer"),
        "the graph",
        count,
    )
    .await?;
    pg.start().await?;
    let result = converge_exactly(&mut p, "postgres down for 30 s").await;
    if result.is_err() {
        keep_file(&pg.log_path(), "postgres down for 30 s");
    }
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_down_for_30s_postgres_keeps_pace_and_graph_catches_up() -> anyhow::Result<()> {
    let stack = kb_testkit::stack().await?;
    let mut server = stack.private_graph().await?;
    let mut p = Pipeline::with_stores(stack.fresh_postgres().await?, server.graph_db()).await?;
    let mut corpus = Corpus::new(0x5eed_0004);
    feed(&p, &mut corpus, 60, Duration::ZERO).await?;
    p.start_all()?;
    wait_sources("first documents", 10, || graph_sources(&p))
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}\n{}", p.logs()))?;

    server.stop().await?;
    let pg = p.postgres().await?;
    let count = || async { Ok(pg.counts().await?.sources) };
    outage(
        &mut p,
        &mut corpus,
        ("the graph server", "graph-writer"),
        "postgres",
        count,
    )
    .await?;
    server.start().await?;
    let result = converge_exactly(&mut p, "graph server down for 30 s").await;
    if result.is_err() {
        keep_file(&server.log_path(), "graph server down for 30 s");
    }
    result
}

/// Text of about `bytes` that parses into many chunks which embed cheaply (the paragraph
/// repeats, so the embedding cache answers most of them).
fn bulky_text(corpus: &mut Corpus, bytes: usize) -> String {
    let paragraph = corpus.text(false);
    let mut out = String::with_capacity(bytes + paragraph.len());
    while out.len() < bytes {
        out.push_str(&paragraph);
    }
    out
}

/// The kb status alerts' keys.
fn alert_keys(p: &Pipeline) -> anyhow::Result<Vec<String>> {
    let out = p.kb(&["status", "--json"])?;
    anyhow::ensure!(
        out.status.success(),
        "kb status failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(status["alerts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["key"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// The broker's store sits on a small filesystem of its own, bounded below the disk's size as
/// the local stack bounds it (90 % of the free space). With the parser down for a while, the
/// backlog fills it mid-ingest: the watcher's publishes are refused with a clear error, `kb
/// status` shows `broker.jetstream.full`, edits and deletions keep coming. Then the disk grows
/// and the broker takes the new limit (a configuration reload): the pipeline resumes by itself
/// and the stores end exactly equal to the folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_store_full_refuses_clearly_and_recovers_with_nothing_lost() -> anyhow::Result<()> {
    const MIB: u64 = 1024 * 1024;
    let stack = kb_testkit::stack().await?;
    // A real small filesystem where the machine lets the test mount one; JetStream's own limit
    // on the ordinary disk otherwise (the same refusal, without a disk that really fills).
    let fs = match kb_testkit::SmallFs::mount(6 * MIB) {
        Ok(fs) => Some(fs),
        Err(e) => {
            eprintln!("no small filesystem here ({e:#}): JetStream's max_file_store alone");
            None
        }
    };
    let limit = |fs: &Option<kb_testkit::SmallFs>, fallback: u64| -> anyhow::Result<u64> {
        Ok(match fs {
            Some(fs) => fs.free_bytes()? / 10 * 9,
            None => fallback,
        })
    };
    let nats = stack
        .nats_with(kb_testkit::NatsConfig {
            max_file_store: Some(limit(&fs, 5 * MIB)?),
            store_parent: fs.as_ref().map(|f| f.subdir("nats")).transpose()?,
            ..Default::default()
        })
        .await?;
    let mut p = Pipeline::with_nats(nats).await?;
    // Stream limits are reserved in the broker's store: they must fit in it, and stay above
    // what this test queues, so the store fills before any stream does.
    for (key, bytes) in [
        ("KB_NATS__SOURCE_MAX_BYTES", 3 * MIB),
        ("KB_NATS__PARSED_MAX_BYTES", MIB),
        ("KB_NATS__DLQ_MAX_BYTES", MIB / 2),
        ("KB_EMBEDDER__CACHE_MAX_BYTES", MIB / 2),
    ] {
        p.set_env_all(key, &bytes.to_string());
    }
    let mut corpus = Corpus::new(0x5eed_0006);
    feed(&p, &mut corpus, 30, Duration::ZERO).await?;
    p.start_all()?;
    wait_sources("first documents", 30, || pg_sources(&p))
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}\n{}", p.logs()))?;

    // The parser goes away; its backlog (large bodies) fills the store.
    p.stop("parser")?;
    let dir = p.watch_dir.path().to_path_buf();
    let refused = |p: &Pipeline| p.log_of("watcher").contains("the broker is full");
    let mut big = 0;
    while !refused(&p) {
        anyhow::ensure!(big < 40, "the store never filled\n{}", p.logs());
        big += 1;
        write_atomic(
            &dir,
            &format!("big/bulk-{big:02}.txt"),
            &bulky_text(&mut corpus, 300_000),
        )?;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    eprintln!("the store refused writes after {big} large files");
    // Edits, deletions and new files while it is full.
    let existing = expect::expected(&dir)?
        .paths
        .into_values()
        .filter(|rel| !rel.starts_with("big/"))
        .collect::<Vec<_>>();
    for (i, rel) in existing.iter().take(8).enumerate() {
        if i % 2 == 0 {
            write_atomic(&dir, rel, &corpus.text(rel.ends_with(".md")))?;
        } else {
            std::fs::remove_file(dir.join(rel))?;
        }
    }
    feed(&p, &mut corpus, 5, Duration::from_millis(50)).await?;
    let keys = alert_keys(&p)?;
    assert!(
        keys.iter().any(|k| k == "broker.jetstream.full"),
        "kb status shows no full store: {keys:?}\n{}",
        p.logs()
    );

    // Space comes back: the disk grows and the broker takes its new limit.
    if let Some(fs) = &fs {
        fs.resize(128 * MIB)?;
    }
    let bigger = limit(&fs, 120 * MIB)?;
    p.nats.set_max_file_store(bigger).await?;
    p.start("parser")?;
    converge_exactly(&mut p, "broker store full").await?;
    let keys = alert_keys(&p)?;
    assert!(
        !keys.iter().any(|k| k.starts_with("broker.")),
        "broker alerts left after recovery: {keys:?}"
    );
    Ok(())
}
