//! `make bench-retrieval`: parser throughput per format, then the corpus transcripts ingested
//! through the real services (`kb ingest`), then recall@5 and recall@10 of every
//! `NAME.queries.json` question against the stored chunks. Prints a table, then `key=value` lines.

use kb_bench_retrieval::{corpus, corpus_dir, parse_speed, pipeline, recall};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let corpus = corpus_dir();
    let mut figures: Vec<(String, String)> = Vec::new();

    println!("== parser throughput ({})", corpus.display());
    for row in parse_speed::measure(&corpus)? {
        println!(
            "{:<12} {:>3} files {:>9.1} KiB  {:>8.2} MB/s  {:>6} chunks",
            row.format,
            row.files,
            row.bytes as f64 / 1024.0,
            row.mb_per_s,
            row.chunks
        );
        figures.push((
            format!("parse_{}_mb_per_s", row.format),
            format!("{:.2}", row.mb_per_s),
        ));
    }

    println!("\n== ingest through the pipeline");
    let transcripts = corpus::transcripts(&corpus.join("transcripts"))?;
    let ingest = pipeline::ingest(&transcripts).await?;
    println!(
        "{} documents, {} chunks in {:.1} s: {:.2} docs/s, {:.1} chunks/s",
        ingest.documents,
        ingest.chunks,
        ingest.seconds,
        ingest.docs_per_s(),
        ingest.chunks_per_s()
    );
    figures.push((
        "ingest_docs_per_s".into(),
        format!("{:.2}", ingest.docs_per_s()),
    ));
    figures.push((
        "ingest_chunks_per_s".into(),
        format!("{:.1}", ingest.chunks_per_s()),
    ));

    println!(
        "\n== retrieval (a hit: a top-k chunk holds {}+ characters of a relevant turn)",
        recall::MIN_OVERLAP
    );
    let report = recall::evaluate(&ingest, &transcripts).await?;
    println!(
        "{:<16} {:>7} {:>9} {:>9} {:>14} {:>14}",
        "meeting", "queries", "recall@5", "recall@10", "corpus r@5", "corpus r@10"
    );
    for m in &report.meetings {
        println!(
            "{:<16} {:>7} {:>9.2} {:>9.2} {:>14.2} {:>14.2}",
            m.name, m.queries, m.within.at5, m.within.at10, m.corpus.at5, m.corpus.at10
        );
    }
    let (within, across) = report.totals();
    println!(
        "{:<16} {:>7} {:>9.2} {:>9.2} {:>14.2} {:>14.2}",
        "all",
        report.queries(),
        within.at5,
        within.at10,
        across.at5,
        across.at10
    );
    figures.push(("queries".into(), report.queries().to_string()));
    figures.push(("recall_at_5".into(), format!("{:.3}", within.at5)));
    figures.push(("recall_at_10".into(), format!("{:.3}", within.at10)));
    figures.push(("corpus_recall_at_5".into(), format!("{:.3}", across.at5)));
    figures.push(("corpus_recall_at_10".into(), format!("{:.3}", across.at10)));

    println!();
    for (k, v) in figures {
        println!("{k}={v}");
    }
    Ok(())
}
