//! Horizontal scaling of the embedder: three kb-embedder processes share the durable
//! consumer, one is SIGKILLed mid-run, and still every chunk lands exactly once in both stores
//! with its own vector. Then an edited document costs only its new text (the shared cache),
//! and `kb status` reports the hit rate.
//!
//! The provider is a small OpenAI-compatible server in this test (fixed latency per request),
//! so the run is quick and the test can see what was paid for.

use kb_e2e::{write_atomic, Pipeline};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DIMS: usize = 384;
const LATENCY: Duration = Duration::from_millis(300);
const WAIT: Duration = Duration::from_secs(90);

/// The fake provider's vector for a text: deterministic, unit length.
fn vector(text: &str) -> Vec<f32> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut v: Vec<f32> = (0..DIMS)
        .map(|_| {
            h ^= h << 13;
            h ^= h >> 7;
            h ^= h << 17;
            (h >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

/// A minimal OpenAI-compatible `/v1/embeddings`: one request per connection, answers after
/// `LATENCY`, records every input it was paid for.
struct FakeProvider {
    url: String,
    inputs: Arc<Mutex<Vec<String>>>,
    requests: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeProvider {
    async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let inputs = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(0));
        let (i, r) = (inputs.clone(), requests.clone());
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (i, r) = (i.clone(), r.clone());
                tokio::spawn(async move {
                    let _ = serve(conn, i, r).await;
                });
            }
        });
        Ok(Self {
            url,
            inputs,
            requests,
            task,
        })
    }

    fn inputs(&self) -> Vec<String> {
        self.inputs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn requests(&self) -> usize {
        *self.requests.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn serve(
    mut conn: tokio::net::TcpStream,
    inputs: Arc<Mutex<Vec<String>>>,
    requests: Arc<Mutex<usize>>,
) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        let n = conn.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "connection closed in headers");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + length {
        let n = conn.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "connection closed in body");
        buf.extend_from_slice(&chunk[..n]);
    }
    let body: serde_json::Value = serde_json::from_slice(&buf[header_end..header_end + length])?;
    let texts: Vec<String> = body["input"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    tokio::time::sleep(LATENCY).await;
    let data: Vec<serde_json::Value> = texts
        .iter()
        .enumerate()
        .map(
            |(i, t)| serde_json::json!({"object": "embedding", "index": i, "embedding": vector(t)}),
        )
        .collect();
    let answer =
        serde_json::json!({"object": "list", "data": data, "model": body["model"]}).to_string();
    // Paid once computed, whether or not the caller is still there to read the answer.
    inputs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .extend(texts);
    *requests.lock().unwrap_or_else(|p| p.into_inner()) += 1;
    conn.write_all(
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
            answer.len()
        )
        .as_bytes(),
    )
    .await?;
    conn.shutdown().await?;
    Ok(())
}

fn corpus(name: &str) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(format!(
        "{}/../../shared/corpus/transcripts/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))?)
}

/// The folder's documents: the corpus transcripts, the long one cut into parts at turn
/// boundaries so there are enough documents to spread over three workers.
fn write_documents(dir: &std::path::Path) -> anyhow::Result<usize> {
    std::fs::write(dir.join("ES2006a.txt"), corpus("ES2006a.txt")?)?;
    std::fs::write(dir.join("TS3010a.txt"), corpus("TS3010a.txt")?)?;
    let long = corpus("covid_2.txt")?;
    let turns: Vec<&str> = long.split("\n\n").collect();
    let parts = 10;
    let per = turns.len().div_ceil(parts);
    let mut n = 2;
    for (i, group) in turns.chunks(per).enumerate() {
        std::fs::write(
            dir.join(format!("covid_part{i:02}.txt")),
            group.join("\n\n"),
        )?;
        n += 1;
    }
    Ok(n)
}

async fn mirror_messages(p: &Pipeline) -> anyhow::Result<u64> {
    let client = async_nats::connect(p.nats.url()).await?;
    let js = async_nats::jetstream::new(client);
    let mut s = js.get_stream("KB_MIRROR").await?;
    Ok(s.info().await?.state.messages)
}

fn parse_vector(text: &str) -> Vec<f32> {
    text.trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .filter_map(|x| x.trim().parse().ok())
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_embedders_one_killed_every_chunk_lands_once() -> anyhow::Result<()> {
    let started = Instant::now();
    let mut p = Pipeline::new().await?;
    let fake = FakeProvider::start().await?;
    let docs = write_documents(p.watch_dir.path())?;
    let embedder_env: Vec<(String, String)> = [
        ("KB_EMBEDDER__PROVIDER", "openai".to_string()),
        ("KB_EMBEDDER__MODEL", "fake-e2e".into()),
        ("KB_EMBEDDER__BASE_URL", fake.url.clone()),
        ("KB_EMBEDDER__DIMENSIONS", DIMS.to_string()),
        // Small requests keep the run long enough to kill a worker in the middle; an ack
        // wait of 10 s redelivers its messages soon, yet well above the 1 s progress acks
        // of a live worker that a loaded machine may delay.
        ("KB_EMBEDDER__MAX_INPUTS_PER_REQUEST", "3".into()),
        ("KB_EMBEDDER__MAX_IN_FLIGHT", "2".into()),
        ("KB_EMBEDDER__CONCURRENCY", "2".into()),
        ("KB_EMBEDDER__ACK_WAIT_SECS", "10".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for s in ["watcher", "parser", "pg-writer", "graph-writer"] {
        p.start(s)?;
    }
    for name in ["embedder-1", "embedder-2", "embedder-3"] {
        p.start_instance("embedder", name, &embedder_env)?;
    }

    // Kill one worker once the work is well under way (a dozen requests answered).
    let deadline = Instant::now() + WAIT;
    while fake.requests() < 12 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "embedders never got going\n{}",
            p.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    p.kill9("embedder-1")?;
    let mirrored_at_kill = mirror_messages(&p).await?;
    assert!(
        mirrored_at_kill < docs as u64,
        "all {docs} documents were done before the kill: the test proves nothing"
    );

    let (pg, graph) = p
        .wait_for("every document embedded", WAIT, |s| {
            s.len() == docs && s.iter().all(|x| x.status == "ok" && x.chunks > 0)
        })
        .await?;
    assert_eq!(pg, graph, "postgres and the graph disagree");
    assert!(pg.iter().all(|s| s.version == 1));
    assert_eq!(
        mirror_messages(&p).await?,
        docs as u64,
        "one mirror record per document"
    );

    // Every chunk exactly once, with its own text's vector.
    let store = p.postgres().await?;
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT chunk_id, text, embedding::text FROM chunks")
            .fetch_all(store.pool())
            .await?;
    let total: u64 = pg.iter().map(|s| s.chunks).sum();
    assert_eq!(rows.len() as u64, total);
    let ids: HashSet<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(ids.len(), rows.len(), "a chunk landed twice");
    for (id, text, emb) in &rows {
        let c = cosine(&parse_vector(emb), &vector(text));
        assert!(
            c > 0.9999,
            "chunk {id} has another text's vector (cosine {c})"
        );
    }
    // Each worker's start-up probe (one input) checks the dimensions; it is not a chunk.
    let paid: Vec<String> = fake
        .inputs()
        .into_iter()
        .filter(|t| t != "dimension probe")
        .collect();
    let paid_set: HashSet<&str> = paid.iter().map(String::as_str).collect();
    assert!(rows.iter().all(|r| paid_set.contains(r.1.as_str())));
    // Redelivered documents found their answered chunks in the shared cache: beyond one
    // payment per stored chunk, only the requests the killed worker had in flight (2 of at
    // most 3 inputs) may have been paid twice. (The same text in two documents that two
    // workers embed at the same moment is paid by both: the cache is not a lock.)
    let distinct: HashSet<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    assert!(
        paid.len() <= rows.len() + 6 + (rows.len() - distinct.len()),
        "{} inputs paid for {} chunks ({} distinct texts)",
        paid.len(),
        rows.len(),
        distinct.len()
    );

    // The surviving workers split the work.
    for name in ["embedder-2", "embedder-3"] {
        let log = p.log_of(name);
        assert!(
            log.lines()
                .any(|l| l.contains("outcome") && l.contains("embedded")),
            "{name} embedded nothing:\n{log}"
        );
    }

    // An edited document pays only for its new text.
    let before = fake.inputs().len();
    let path = p.watch_dir.path().join("ES2006a.txt");
    let mut text = std::fs::read_to_string(&path)?;
    text.push_str("\n\nProject Manager  30:00\nOne more remark about the remote control budget, added later.\n");
    write_atomic(p.watch_dir.path(), "ES2006a.txt", &text)?;
    let (pg, graph) = p
        .wait_for("ES2006a.txt version 2", WAIT, |s| {
            s.iter().any(|x| x.version == 2)
        })
        .await?;
    assert_eq!(pg, graph);
    let edited_chunks = pg
        .iter()
        .find(|s| s.version == 2)
        .map(|s| s.chunks)
        .unwrap_or_default();
    let new_inputs = fake.inputs().len() - before;
    assert!(
        new_inputs >= 1 && (new_inputs as u64) * 4 < edited_chunks,
        "{new_inputs} inputs paid for an edit of a {edited_chunks}-chunk document"
    );

    // `kb status` reports the shared cache's hit rate (totals are reported every 2 s).
    let deadline = Instant::now() + Duration::from_secs(15);
    let cache = loop {
        let out = p.kb(&["status", "--json"])?;
        anyhow::ensure!(
            out.status.success(),
            "kb status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let cache = s["embed_cache"].clone();
        if cache["hits"].as_u64().unwrap_or(0) as usize >= edited_chunks as usize - new_inputs {
            break cache;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "cache hits never reported: {s:#}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let rate = cache["hit_rate"].as_f64().unwrap_or(0.0);
    assert!(rate > 0.0 && rate < 1.0, "{cache}");
    assert!(
        cache["entries"].as_u64().unwrap_or(0) >= distinct.len() as u64,
        "{cache}"
    );

    for s in [
        "embedder-2",
        "embedder-3",
        "watcher",
        "parser",
        "pg-writer",
        "graph-writer",
    ] {
        p.stop(s)?;
    }
    eprintln!(
        "embedder_scaling took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
