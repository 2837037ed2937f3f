//! `kb search QUERY`: embeds the query with the configured model and asks Postgres for the
//! nearest chunks by cosine distance.

use crate::stores;
use kb_core::{Component, Settings};
use serde::Serialize;
use std::process::ExitCode;

#[derive(Serialize)]
struct Hit {
    source_id: String,
    path: String,
    chunk_id: String,
    chunk_index: u32,
    score: f32,
    importance_score: f32,
    text: String,
}

pub async fn run(
    settings: &Settings,
    query: &str,
    k: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    settings.validate(&[Component::Embedder])?;
    let embedder = kb_embedder::load_embedder(settings)?;
    let vectors = embedder.embed(&[query.to_string()]).await?;
    let Some(vector) = vectors.into_iter().next() else {
        anyhow::bail!("the embedding model returned no vector for the query");
    };
    let pg = stores::postgres(settings).await?;
    let hits: Vec<Hit> = pg
        .search(&vector, k)
        .await?
        .into_iter()
        .map(|h| Hit {
            source_id: h.source_id,
            path: h.path,
            chunk_id: h.chunk_id,
            chunk_index: h.chunk_index,
            score: h.score,
            importance_score: h.importance_score,
            text: h.text,
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&hits)?);
    } else if hits.is_empty() {
        println!("no results");
    } else {
        for (i, h) in hits.iter().enumerate() {
            let preview: String = h.text.chars().take(240).collect();
            println!(
                "{}. {:.3}  {} #{}\n   {}\n",
                i + 1,
                h.score,
                h.path,
                h.chunk_index,
                preview.replace('\n', " ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
