//! `kb verify`: the seed plan's Phase 5 checks on Postgres (its SQL, unchanged), then a
//! per-source comparison of Postgres and the graph: same sources, versions, statuses, chunks
//! and mentions. Exits 1 on any problem.

use crate::stores;
use kb_core::Settings;
use kb_store::{MirrorStore, SourceSummary};
use serde::Serialize;
use std::collections::BTreeMap;
use std::process::ExitCode;

#[derive(Serialize)]
struct Phase5 {
    table_counts: BTreeMap<String, i64>,
    total_chunks: i64,
    chunks_with_embeddings: i64,
    percentage: Option<f64>,
    vector_search_results: usize,
}

#[derive(Serialize)]
struct Disagreement {
    source_id: String,
    problem: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    postgres: Option<SourceSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    graph: Option<SourceSummary>,
}

#[derive(Serialize)]
struct Report {
    ok: bool,
    problems: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phase5: Option<Phase5>,
    sources_compared: usize,
    disagreements: Vec<Disagreement>,
}

/// What differs between two summaries of one source, if anything.
fn compare(pg: &SourceSummary, graph: &SourceSummary) -> Option<String> {
    let mut diffs = Vec::new();
    if pg.version != graph.version {
        diffs.push(format!("version {} vs {}", pg.version, graph.version));
    }
    if pg.status != graph.status {
        diffs.push(format!("status {} vs {}", pg.status, graph.status));
    }
    if pg.chunks != graph.chunks || pg.chunk_digest != graph.chunk_digest {
        diffs.push(format!("chunks {} vs {}", pg.chunks, graph.chunks));
    }
    if pg.mentions != graph.mentions || pg.mention_digest != graph.mention_digest {
        diffs.push(format!("mentions {} vs {}", pg.mentions, graph.mentions));
    }
    if pg.entities != graph.entities {
        diffs.push(format!("entities {} vs {}", pg.entities, graph.entities));
    }
    if pg.relations != graph.relations {
        diffs.push(format!("relations {} vs {}", pg.relations, graph.relations));
    }
    (!diffs.is_empty()).then(|| format!("postgres vs graph: {}", diffs.join(", ")))
}

fn agreement(pg: Vec<SourceSummary>, graph: Vec<SourceSummary>) -> Vec<Disagreement> {
    let mut pg: BTreeMap<String, SourceSummary> =
        pg.into_iter().map(|s| (s.source_id.clone(), s)).collect();
    let mut out = Vec::new();
    for g in graph {
        match pg.remove(&g.source_id) {
            Some(p) => {
                if let Some(problem) = compare(&p, &g) {
                    out.push(Disagreement {
                        source_id: g.source_id.clone(),
                        problem,
                        postgres: Some(p),
                        graph: Some(g),
                    });
                }
            }
            None => out.push(Disagreement {
                source_id: g.source_id.clone(),
                problem: "only in the graph".into(),
                postgres: None,
                graph: Some(g),
            }),
        }
    }
    out.extend(pg.into_values().map(|p| Disagreement {
        source_id: p.source_id.clone(),
        problem: "only in postgres".into(),
        postgres: Some(p),
        graph: None,
    }));
    out
}

pub async fn run(settings: &Settings, json: bool) -> anyhow::Result<ExitCode> {
    let mut problems = Vec::new();
    let pg = stores::postgres(settings).await?;
    let graph = stores::graph(settings).await?;

    let report5 = pg.phase5().await?;
    if report5.total_chunks > 0 && report5.percentage != Some(100.0) {
        problems.push(format!(
            "embedding coverage is {:?}% ({} of {} chunks)",
            report5.percentage, report5.chunks_with_embeddings, report5.total_chunks
        ));
    }
    if report5.total_chunks > 0 && report5.sample_search.is_empty() {
        problems.push("the seed's vector search returned no rows".into());
    }
    let phase5 = Phase5 {
        table_counts: report5.table_counts.iter().cloned().collect(),
        total_chunks: report5.total_chunks,
        chunks_with_embeddings: report5.chunks_with_embeddings,
        percentage: report5.percentage,
        vector_search_results: report5.sample_search.len(),
    };

    let pg_sources = pg.summaries().await?;
    let graph_sources = graph.summaries().await?;
    let compared = pg_sources.len().max(graph_sources.len());
    let disagreements = agreement(pg_sources, graph_sources);
    if !disagreements.is_empty() {
        problems.push(format!(
            "{} source(s) differ between postgres and the graph",
            disagreements.len()
        ));
    }
    let report = Report {
        ok: problems.is_empty(),
        problems,
        phase5: Some(phase5),
        sources_compared: compared,
        disagreements,
    };

    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        if let Some(p) = &report.phase5 {
            println!("Phase 5 (seed plan):");
            for (table, n) in &p.table_counts {
                println!("  {table:<15} {n}");
            }
            match p.percentage {
                Some(pct) => println!(
                    "  embeddings      {} of {} chunks ({pct:.2}%)",
                    p.chunks_with_embeddings, p.total_chunks
                ),
                None => println!("  embeddings      no chunks yet"),
            }
            println!("  vector search   {} result(s)", p.vector_search_results);
        }
        println!(
            "Agreement: {} source(s) compared, {} differ",
            report.sources_compared,
            report.disagreements.len()
        );
        for d in &report.disagreements {
            println!("  {}  {}", d.source_id, d.problem);
        }
        println!("{}", if report.ok { "OK" } else { "PROBLEMS:" });
        for p in &report.problems {
            println!("  - {p}");
        }
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: &str, version: u64, chunks: &[&str]) -> SourceSummary {
        SourceSummary::from_parts(
            id,
            version,
            "ok",
            chunks.iter().map(|c| c.to_string()),
            Vec::new(),
            0,
            0,
        )
    }

    #[test]
    fn agreement_reports_missing_and_different_sources() {
        let pg = vec![
            summary("a", 1, &["c1"]),
            summary("b", 2, &["c2"]),
            summary("only-pg", 1, &[]),
        ];
        let graph = vec![
            summary("a", 1, &["c1"]),
            summary("b", 2, &["c3"]),
            summary("only-graph", 1, &[]),
        ];
        let d = agreement(pg, graph);
        let problems: BTreeMap<_, _> = d
            .iter()
            .map(|d| (d.source_id.as_str(), d.problem.as_str()))
            .collect();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems["b"].contains("chunks"));
        assert_eq!(problems["only-pg"], "only in postgres");
        assert_eq!(problems["only-graph"], "only in the graph");
    }
}
