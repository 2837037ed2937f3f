//! Retrieval quality per mode: every corpus question through the real engine
//! (`kb_query::Backend` from the settings, both stores of the `bench` instance), searched
//! corpus-wide, the returned chunk texts scored by the corpus rule
//! ([`kb_bench_retrieval::recall::first_hit`]).

use anyhow::{bail, Context};
use kb_bench_retrieval::corpus::Transcript;
use kb_bench_retrieval::recall::{first_hit, mrr, score, Recall};
use kb_core::Settings;
use kb_query::api::Filters;
use kb_query::{Backend, Mode, SearchRequest};

/// The modes, in the order the tables list them.
pub const MODES: [Mode; 4] = [Mode::Hybrid, Mode::Vector, Mode::Keyword, Mode::Graph];

/// Results asked for (the figures are recall@5, recall@10, MRR@10).
const K: usize = 10;

pub struct ModeQuality {
    pub mode: Mode,
    pub recall: Recall,
    pub mrr: f64,
    /// recall@10 per meeting, in the transcripts' order.
    pub per_meeting: Vec<f64>,
    /// Questions the mode returned nothing for.
    pub empty: usize,
}

pub async fn measure(
    settings: &Settings,
    transcripts: &[Transcript],
) -> anyhow::Result<Vec<ModeQuality>> {
    let backend = Backend::from_settings(settings)
        .await
        .context("cannot start the query engine")?;
    backend.check_now().await;
    let away: Vec<String> = backend
        .engine
        .stores()
        .into_iter()
        .filter(|s| !s.up)
        .map(|s| format!("{}: {}", s.store, s.reason.unwrap_or_default()))
        .collect();
    if !away.is_empty() {
        bail!("a store does not answer the query engine: {away:?}");
    }
    let mut out = Vec::new();
    for mode in MODES {
        let (mut ranks, mut per_meeting, mut empty) = (Vec::new(), Vec::new(), 0);
        for t in transcripts {
            let mut mine = Vec::new();
            for q in &t.queries {
                let answer = backend
                    .engine
                    .search(&SearchRequest {
                        query: q.query.clone(),
                        mode,
                        k: Some(K),
                        filters: Filters::default(),
                    })
                    .await
                    .with_context(|| format!("{} search for {:?}", mode.as_str(), q.query))?;
                if !answer.degraded.is_empty() {
                    bail!(
                        "{} search for {:?} was degraded ({:?}): a store missed its deadline",
                        mode.as_str(),
                        q.query,
                        answer.degraded
                    );
                }
                if answer.results.is_empty() {
                    empty += 1;
                }
                let texts: Vec<String> = answer.results.into_iter().map(|h| h.text).collect();
                mine.push(first_hit(&texts, &t.relevant_texts(q)));
            }
            per_meeting.push(score(&mine).at10);
            ranks.extend(mine);
        }
        out.push(ModeQuality {
            mode,
            recall: score(&ranks),
            mrr: mrr(&ranks, K),
            per_meeting,
            empty,
        });
    }
    Ok(out)
}
