//! Extraction of one parsed document: its chunks in groups, one request per group (at most
//! `max_concurrency` at once), each answer validated, all within a per-document token budget.
//!
//! Budget: before any call, groups are taken in document order while their estimated
//! prompt tokens plus `max_output_tokens` fit `max_tokens_per_document`; the rest are not
//! sent, and the result says `budget_exceeded`. A re-ask after an invalid answer is made
//! only if it still fits the budget. So the budget bounds spend, and which chunks were
//! covered does not depend on timing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::{StreamExt, TryStreamExt};
use kb_parse::{EntityType, RelationType};
use kb_proto::{Chunk, ParsedDocument};

use crate::client::{ChatClient, Completion};
use crate::error::LlmError;
use crate::prompt;
use crate::stats::ExtractionStats;
use crate::validate::{self, GroupChunk, GroupOutput};
use crate::LlmSettings;

/// An entity the model found and the chunks confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmEntity {
    pub entity_type: EntityType,
    /// The name as first written in the document.
    pub name: String,
    /// By the local extractor's rules (`kb_parse::canonical_name`, local date forms).
    pub canonical_name: String,
}

/// `entity` indexes [`Extraction::entities`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmMention {
    pub chunk_id: String,
    pub entity: usize,
    /// Occurrences of the name in the chunk text.
    pub count: u32,
}

/// `source` and `target` index [`Extraction::entities`].
#[derive(Debug, Clone, PartialEq)]
pub struct LlmRelation {
    pub source: usize,
    pub target: usize,
    pub relation_type: RelationType,
    /// Sum over the chunks stating it of the model's confidence (each in [0, 1]), so it is on
    /// the local extractor's scale (number of chunks in which a relation holds).
    pub weight: f32,
    /// Chunks in which the model stated it.
    pub chunks: u32,
}

/// What the model found in one document, validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extraction {
    pub model: String,
    pub entities: Vec<LlmEntity>,
    pub mentions: Vec<LlmMention>,
    pub relations: Vec<LlmRelation>,
    /// Some chunks were not (or not fully) processed because the token budget was spent.
    pub budget_exceeded: bool,
    pub stats: ExtractionStats,
}

impl Extraction {
    /// True when every chunk got a valid answer.
    pub fn is_complete(&self) -> bool {
        !self.budget_exceeded && self.stats.groups_dropped == 0
    }
}

/// The LLM extractor: one per process, shared by all documents (its concurrency limit is
/// global to it).
pub struct LlmExtractor {
    client: ChatClient,
    settings: LlmSettings,
}

impl std::fmt::Debug for LlmExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // the key stays out: only where requests go and with which model
        f.debug_struct("LlmExtractor")
            .field("provider", &self.settings.provider)
            .field(
                "endpoint",
                &kb_core::secret::redact_url(&self.settings.endpoint()),
            )
            .field("model", &self.model())
            .field("max_concurrency", &self.settings.max_concurrency)
            .finish()
    }
}

/// One request's worth of chunks. Owned, so the futures over it are `Send` for any caller.
struct Group {
    chunk_ids: Vec<String>,
    chunks: Vec<GroupChunk>,
    user: String,
    cost: usize,
}

/// One group's result.
struct GroupResult {
    chunk_ids: Vec<String>,
    output: GroupOutput,
    stats: ExtractionStats,
    out_of_budget: bool,
}

impl LlmExtractor {
    /// Validates the settings and resolves the API key (`api_key`, `api_key_file`, or the
    /// provider's environment variable). Does not check `enabled`: that is the caller's switch.
    pub fn new(settings: LlmSettings) -> Result<Self, LlmError> {
        Self::with_env(settings, |k| std::env::var(k).ok())
    }

    /// [`Self::new`] with the environment lookup supplied (for tests and embedding).
    pub fn with_env(
        settings: LlmSettings,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, LlmError> {
        let mut problems = settings.validate().err().map(|e| e.0).unwrap_or_default();
        let key = match settings.resolve_api_key(env) {
            Ok(k) => Some(k),
            Err(e) => {
                problems.extend(e.0);
                None
            }
        };
        let (true, Some(key)) = (problems.is_empty(), key) else {
            return Err(LlmError::config(problems.join("; ")));
        };
        let client = ChatClient::new(&settings, key)?;
        Ok(Self { client, settings })
    }

    pub fn model(&self) -> &str {
        self.client.model()
    }

    pub fn settings(&self) -> &LlmSettings {
        &self.settings
    }

    /// Extracts entities, mentions and relations from the document's chunks.
    ///
    /// Errors: a transient one (429/5xx/timeouts still failing after the retries, or a
    /// `Retry-After` longer than `max_retry_after_secs`) or a permanent/configuration one
    /// (400, 401, 403, ...) fails the whole document; invalid answers do not (they are
    /// re-asked once, then dropped and counted).
    pub async fn extract(&self, doc: &ParsedDocument) -> Result<Extraction, LlmError> {
        let max_out = self.settings.max_output_tokens as usize;
        let mut stats = ExtractionStats::default();
        let mut budget_exceeded = false;
        let mut left = self.settings.max_tokens_per_document;
        let mut planned = Vec::new();
        let texts: Vec<&Chunk> = doc
            .chunks
            .iter()
            .filter(|c| !c.text.trim().is_empty())
            .collect();
        for group in texts.chunks(self.settings.chunks_per_request.max(1)) {
            stats.groups += 1;
            let user = prompt::user_prompt(group);
            let cost = prompt::estimate_request_tokens(&user) + max_out;
            if budget_exceeded || cost > left {
                budget_exceeded = true;
                stats.groups_skipped_budget += 1;
                continue;
            }
            left -= cost;
            stats.estimated_tokens += cost as u64;
            planned.push(Group {
                chunk_ids: group.iter().map(|c| c.chunk_id.clone()).collect(),
                chunks: group
                    .iter()
                    .map(|c| GroupChunk::new(c.index, &c.text))
                    .collect(),
                user,
                cost,
            });
        }
        let spare = AtomicUsize::new(left);
        let results: Vec<GroupResult> = futures::stream::iter(planned)
            .map(|g| self.run_group(g, &spare))
            .buffered(self.settings.max_concurrency.max(1))
            .try_collect()
            .await?;

        let mut ex = Extraction {
            model: self.model().to_owned(),
            ..Extraction::default()
        };
        let mut acc = Accumulator::default();
        for r in results {
            stats.add(&r.stats);
            budget_exceeded |= r.out_of_budget;
            acc.add(&r.chunk_ids, r.output);
        }
        acc.finish(&mut ex);
        ex.budget_exceeded = budget_exceeded;
        ex.stats = stats;
        ex.stats.emit();
        if budget_exceeded {
            tracing::warn!(
                source_id = doc.source.as_ref().map(|s| s.source_id.as_str()),
                skipped_groups = ex.stats.groups_skipped_budget,
                budget = self.settings.max_tokens_per_document,
                "LLM token budget spent; the rest of the document keeps only local entities"
            );
        }
        Ok(ex)
    }

    async fn run_group(&self, g: Group, spare: &AtomicUsize) -> Result<GroupResult, LlmError> {
        let mut stats = ExtractionStats::default();
        let mut out_of_budget = false;
        let mut output = GroupOutput::default();
        for ask in 0..2 {
            if ask == 1 {
                // the re-ask must fit what is left of the budget
                let fits = spare
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |s| {
                        s.checked_sub(g.cost)
                    })
                    .is_ok();
                if !fits {
                    out_of_budget = true;
                    stats.groups_dropped += 1;
                    break;
                }
                stats.output_retries += 1;
                stats.estimated_tokens += g.cost as u64;
            }
            let done = self.client.complete(&g.user).await?;
            account(&done, &mut stats);
            match validate::parse(done.content.as_deref()) {
                Ok(parsed) => {
                    output = validate::check(parsed, &g.chunks, &mut stats);
                    break;
                }
                Err(why) => {
                    tracing::debug!(?why, finish_reason = ?done.finish_reason, "invalid LLM answer");
                    if done.finish_reason.as_deref() == Some("length") {
                        stats.truncated_output += 1;
                        stats.groups_dropped += 1;
                        break;
                    }
                    why.count(&mut stats);
                    if ask == 1 {
                        stats.groups_dropped += 1;
                    }
                }
            }
        }
        Ok(GroupResult {
            chunk_ids: g.chunk_ids,
            output,
            stats,
            out_of_budget,
        })
    }
}

fn account(done: &Completion, stats: &mut ExtractionStats) {
    stats.requests += 1;
    stats.http_attempts += u64::from(done.attempts);
    if let Some(u) = done.usage {
        stats.prompt_tokens += u.prompt_tokens;
        stats.completion_tokens += u.completion_tokens;
    }
}

/// Deduplicates entities across groups and sums relation evidence over chunks.
#[derive(Default)]
struct Accumulator {
    entities: Vec<LlmEntity>,
    index: HashMap<(EntityType, String), usize>,
    mentions: Vec<LlmMention>,
    mention_index: HashMap<(String, usize), usize>,
    relations: Vec<LlmRelation>,
    relation_index: HashMap<(usize, usize, RelationType), usize>,
}

impl Accumulator {
    fn entity(&mut self, ty: EntityType, name: &str, canonical: &str) -> usize {
        let key = (ty, canonical.to_owned());
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        self.entities.push(LlmEntity {
            entity_type: ty,
            name: name.to_owned(),
            canonical_name: canonical.to_owned(),
        });
        self.index.insert(key, self.entities.len() - 1);
        self.entities.len() - 1
    }

    fn add(&mut self, chunk_ids: &[String], out: GroupOutput) {
        let ids: Vec<usize> = out
            .entities
            .iter()
            .map(|e| self.entity(e.ty, &e.name, &e.canonical))
            .collect();
        for (e, &id) in out.entities.iter().zip(&ids) {
            let chunk_id = chunk_ids[e.chunk].clone();
            match self.mention_index.get(&(chunk_id.clone(), id)) {
                Some(&m) => self.mentions[m].count = self.mentions[m].count.max(e.count),
                None => {
                    self.mention_index
                        .insert((chunk_id.clone(), id), self.mentions.len());
                    self.mentions.push(LlmMention {
                        chunk_id,
                        entity: id,
                        count: e.count,
                    });
                }
            }
        }
        // per chunk, a relation counts once, with its highest stated confidence
        let mut per_chunk: HashMap<(usize, usize, usize, RelationType), f32> = HashMap::new();
        let mut order = Vec::new();
        for r in &out.relations {
            let (mut s, mut t) = (ids[r.source], ids[r.target]);
            if s == t {
                continue;
            }
            if r.ty == RelationType::CoOccurs && s > t {
                std::mem::swap(&mut s, &mut t);
            }
            let key = (r.chunk, s, t, r.ty);
            match per_chunk.get_mut(&key) {
                Some(w) => *w = w.max(r.weight),
                None => {
                    per_chunk.insert(key, r.weight);
                    order.push(key);
                }
            }
        }
        for key in order {
            let (_, s, t, ty) = key;
            let w = per_chunk.get(&key).copied().unwrap_or_default();
            match self.relation_index.get(&(s, t, ty)) {
                Some(&i) => {
                    self.relations[i].weight += w;
                    self.relations[i].chunks += 1;
                }
                None => {
                    self.relation_index.insert((s, t, ty), self.relations.len());
                    self.relations.push(LlmRelation {
                        source: s,
                        target: t,
                        relation_type: ty,
                        weight: w,
                        chunks: 1,
                    });
                }
            }
        }
    }

    fn finish(self, ex: &mut Extraction) {
        ex.entities = self.entities;
        ex.mentions = self.mentions;
        ex.relations = self.relations;
    }
}
