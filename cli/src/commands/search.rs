//! `kb search QUERY`: the same hybrid retrieval the `kb-query` service serves, run in this
//! process (vector + keyword + graph, fused), with the same filters and the same JSON.

use std::process::ExitCode;

use clap::Args as ClapArgs;
use kb_core::Settings;
use kb_query::api::{Filters, Hit};
use kb_query::{Backend, Mode, QueryErrorKind, SearchRequest, SearchResponse};

#[derive(ClapArgs, Debug)]
pub struct Args {
    /// The question or keywords.
    pub query: String,
    /// hybrid (vector + keyword + graph, fused), vector, keyword or graph.
    #[arg(long, default_value = "hybrid")]
    pub mode: Mode,
    /// How many results [default: query.default_k, 10].
    #[arg(short, long)]
    pub k: Option<usize>,
    /// Only sources whose path starts with this.
    #[arg(long, value_name = "PREFIX")]
    pub path_prefix: Option<String>,
    /// folder, drive, or an exact origin such as folder:inbox.
    #[arg(long)]
    pub origin: Option<String>,
    /// A media type (application/pdf) or a family (text/*).
    #[arg(long, value_name = "TYPE")]
    pub media_type: Option<String>,
    /// Chunks where a speaker's name contains this (transcripts).
    #[arg(long)]
    pub speaker: Option<String>,
    /// Documents dated at or after this (2024-05-01 or RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Documents dated at or before this.
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Chunks that mention this entity.
    #[arg(long, value_name = "NAME")]
    pub entity: Option<String>,
    #[arg(long)]
    pub json: bool,
}

impl Args {
    fn request(&self) -> SearchRequest {
        SearchRequest {
            query: self.query.clone(),
            mode: self.mode,
            k: self.k,
            filters: Filters {
                path_prefix: self.path_prefix.clone(),
                origin: self.origin.clone(),
                media_type: self.media_type.clone(),
                speaker: self.speaker.clone(),
                from: self.from.clone(),
                to: self.to.clone(),
                entity: self.entity.clone(),
            },
        }
    }
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let backend = Backend::from_settings(settings).await?;
    backend.check_now().await;
    match backend.engine.search(&args.request()).await {
        Ok(answer) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&answer)?);
            } else {
                print_text(&answer);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("kb search: {e}");
            Ok(match e.kind {
                QueryErrorKind::Invalid | QueryErrorKind::Unavailable => ExitCode::from(2),
                QueryErrorKind::NotFound => ExitCode::from(1),
            })
        }
    }
}

fn print_text(answer: &SearchResponse) {
    if !answer.degraded.is_empty() {
        let names: Vec<&str> = answer.degraded.iter().map(|r| r.as_str()).collect();
        eprintln!(
            "degraded: {} could not answer (a store is away); results come from the rest",
            names.join(", ")
        );
    }
    if answer.results.is_empty() {
        println!("no results");
    }
    for h in &answer.results {
        println!(
            "{}. {:.4}  {} #{}{}{}\n   {}\n",
            h.rank,
            h.score,
            h.source.path,
            h.chunk_index,
            times(h),
            ranks(h),
            h.text
                .chars()
                .take(240)
                .collect::<String>()
                .replace('\n', " ")
        );
    }
    if !answer.entities.is_empty() {
        println!("entities:");
        for e in &answer.entities {
            let related: Vec<String> = e
                .neighbours
                .iter()
                .take(5)
                .map(|n| format!("{} ({})", n.name, n.relation.to_lowercase()))
                .collect();
            println!(
                "  {} [{}] in {} chunks{}",
                e.name,
                e.entity_type.to_lowercase(),
                e.chunks,
                if related.is_empty() {
                    String::new()
                } else {
                    format!(": {}", related.join(", "))
                }
            );
        }
    }
}

fn times(h: &Hit) -> String {
    match (h.start_seconds, h.end_seconds) {
        (Some(a), Some(b)) => format!(" [{}–{}]", clock(a), clock(b)),
        (Some(a), None) => format!(" [{}]", clock(a)),
        _ => String::new(),
    }
}

fn clock(s: f64) -> String {
    let s = s.max(0.0) as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

fn ranks(h: &Hit) -> String {
    let r: Vec<String> = [
        ("vector", h.ranks.vector),
        ("keyword", h.ranks.keyword),
        ("graph", h.ranks.graph),
    ]
    .iter()
    .filter_map(|(n, r)| r.map(|r| format!("{n} #{r}")))
    .collect();
    format!("  ({})", r.join(", "))
}
