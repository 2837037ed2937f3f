//! The `kb` CLI against a running pipeline: ingest waits for both stores, verify agrees,
//! status and search report what is there. `--json` outputs are parsed as the contract says.

use kb_e2e::Pipeline;
use serde_json::Value;
use std::path::PathBuf;

fn corpus_transcripts() -> anyhow::Result<Vec<PathBuf>> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/corpus/transcripts"
    ));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    anyhow::ensure!(!files.is_empty(), "no transcripts in {}", dir.display());
    Ok(files)
}

fn json(out: &std::process::Output) -> anyhow::Result<Value> {
    serde_json::from_slice(&out.stdout).map_err(|e| {
        anyhow::anyhow!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_corpus_then_verify_status_and_search() -> anyhow::Result<()> {
    let mut p = Pipeline::new().await?;
    for s in ["parser", "embedder", "pg-writer", "graph-writer"] {
        p.start(s)?;
    }
    let files = corpus_transcripts()?;
    let mut args: Vec<String> = vec![
        "ingest".into(),
        "--json".into(),
        "--timeout".into(),
        "300".into(),
    ];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = p.kb(&refs)?;
    let report = json(&out)?;
    assert!(
        out.status.success(),
        "ingest failed: {report:#}\n{}",
        p.logs()
    );
    assert_eq!(
        report["ok"].as_u64(),
        Some(files.len() as u64),
        "{report:#}"
    );
    for f in report["files"].as_array().into_iter().flatten() {
        assert_eq!(f["writers"]["pg-writer"], "written", "{f:#}");
        assert_eq!(f["writers"]["graph-writer"], "written", "{f:#}");
    }

    // Ingesting the same files again is a no-op that still reports them applied.
    let again = p.kb(&refs)?;
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );

    let verify = p.kb(&["verify", "--json"])?;
    let v = json(&verify)?;
    assert!(verify.status.success(), "verify failed: {v:#}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["sources_compared"].as_u64(), Some(files.len() as u64));
    assert_eq!(v["phase5"]["percentage"].as_f64(), Some(100.0));

    let status = p.kb(&["status", "--json"])?;
    let s = json(&status)?;
    assert!(status.status.success());
    assert_eq!(
        s["stores"]["postgres"]["counts"]["sources"].as_u64(),
        Some(files.len() as u64),
        "{s:#}"
    );
    assert_eq!(
        s["stores"]["graph"]["counts"]["sources"].as_u64(),
        Some(files.len() as u64),
        "{s:#}"
    );
    for c in s["consumers"].as_array().into_iter().flatten() {
        assert_eq!(
            c["pending"].as_u64(),
            Some(0),
            "consumer lag after ingest: {c:#}"
        );
    }

    // A question whose answer is in one meeting finds that meeting first.
    let search = p.kb(&[
        "search",
        "--json",
        "-k",
        "3",
        "remote control design budget",
    ])?;
    let answer = json(&search)?;
    assert!(search.status.success());
    assert_eq!(answer["mode"], "hybrid", "{answer:#}");
    assert_eq!(
        answer["degraded"].as_array().map(Vec::len),
        Some(0),
        "{answer:#}"
    );
    let hits = answer["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(hits.len(), 3, "{answer:#}");
    for h in &hits {
        assert!(!h["text"].as_str().unwrap_or("").is_empty(), "{h:#}");
        assert!(
            h["path"].as_str().unwrap_or("").ends_with(".txt")
                || h["path"].as_str().unwrap_or("").ends_with(".docx"),
            "{h:#}"
        );
        assert!(
            h["ranks"].as_object().is_some_and(|r| !r.is_empty()),
            "{h:#}"
        );
    }
    // Fused: the best hit is one that more than one retriever found.
    assert!(
        hits[0]["ranks"].as_object().is_some_and(|r| r.len() >= 2),
        "{answer:#}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_names_the_files_that_failed_and_the_rest_still_lands() -> anyhow::Result<()> {
    let mut p = Pipeline::new().await?;
    for s in ["parser", "embedder", "pg-writer", "graph-writer"] {
        p.start(s)?;
    }
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("good.md"),
        "# Standup\n\nMaria Lopez reviewed the release plan with the Berlin team.\n",
    )?;
    std::fs::write(dir.path().join("empty.txt"), "   \n\n")?;
    std::fs::write(
        dir.path().join("binary.bin"),
        [0u8, 159, 146, 150, 0, 1, 2, 3, 0, 0, 7],
    )?;
    let out = p.kb(&[
        "ingest",
        "--json",
        "--timeout",
        "120",
        &dir.path().display().to_string(),
    ])?;
    let report = json(&out)?;
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert_eq!(report["ok"].as_u64(), Some(1), "{report:#}");
    assert_eq!(report["failed"].as_u64(), Some(2), "{report:#}");
    let failed: Vec<&str> = report["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["status"] == "failed")
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert!(
        failed.iter().all(|f| std::path::Path::new(f).is_absolute()),
        "{failed:?}"
    );
    assert!(
        failed.iter().any(|f| f.ends_with("empty.txt")),
        "{failed:?}"
    );
    assert!(
        failed.iter().any(|f| f.ends_with("binary.bin")),
        "{failed:?}"
    );

    // The failures are visible in the stores and as dead letters.
    let status = json(&p.kb(&["status", "--json"])?)?;
    assert_eq!(
        status["stores"]["postgres"]["counts"]["failed_sources"].as_u64(),
        Some(2),
        "{status:#}"
    );
    assert_eq!(
        status["dead_letters"]["parser"].as_u64(),
        Some(2),
        "{status:#}"
    );
    let verify = p.kb(&["verify", "--json"])?;
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    Ok(())
}
