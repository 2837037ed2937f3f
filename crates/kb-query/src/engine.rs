//! The query engine: checks a request, runs the mode's retrievers at once against their
//! stores, fuses their lists, and says which retrievers could not answer.

use std::sync::Arc;
use std::time::Instant;

use kb_core::settings::QuerySettings;
use kb_embed::Embedder;
use kb_store::read::{
    ChunkHit, Document, DocumentStore, EntityIndex, EntityStats, Neighbour, SourceInfo, TextIndex,
    TextScan,
};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::api::{
    ChunkOut, DocumentResponse, EntityResponse, Hit, Mode, Retriever, SearchRequest,
    SearchResponse, SourceOut,
};
use crate::error::{QueryError, QueryErrorExt as _};
use crate::filters::to_chunk_filter;
use crate::fusion::{fuse, Ranked};
use crate::retrieve::{self, neighbour_out, Outcome};
use crate::slot::{Slot, StoreStatus};
use crate::telemetry::QueryServed;

/// What the Postgres side answers.
pub trait PgSide: TextIndex + EntityIndex + DocumentStore {}
impl<T: TextIndex + EntityIndex + DocumentStore + ?Sized> PgSide for T {}

/// What the graph side answers.
pub trait GraphSide: EntityIndex + DocumentStore + TextScan {}
impl<T: EntityIndex + DocumentStore + TextScan + ?Sized> GraphSide for T {}

/// The knobs of retrieval (from `[query]`).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub default_k: usize,
    pub max_k: usize,
    pub max_query_chars: usize,
    pub depth: usize,
    pub rrf_k: f64,
    pub weight_vector: f64,
    pub weight_keyword: f64,
    pub weight_graph: f64,
    pub max_neighbours: usize,
}

impl From<&QuerySettings> for EngineConfig {
    fn from(q: &QuerySettings) -> Self {
        Self {
            default_k: q.default_k,
            max_k: q.max_k,
            max_query_chars: q.max_query_chars,
            depth: q.depth,
            rrf_k: q.rrf_k,
            weight_vector: q.weight_vector,
            weight_keyword: q.weight_keyword,
            weight_graph: q.weight_graph,
            max_neighbours: q.max_neighbours,
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        (&QuerySettings::default()).into()
    }
}

pub struct QueryEngine {
    cfg: EngineConfig,
    pg: Arc<Slot<dyn PgSide>>,
    graph: Arc<Slot<dyn GraphSide>>,
    embedder: Option<Arc<dyn Embedder>>,
}

impl QueryEngine {
    /// `embedder` embeds queries for the vector retriever; without one, vector is degraded.
    pub fn new(
        cfg: EngineConfig,
        pg: Arc<Slot<dyn PgSide>>,
        graph: Arc<Slot<dyn GraphSide>>,
        embedder: Option<Arc<dyn Embedder>>,
    ) -> Self {
        Self {
            cfg,
            pg,
            graph,
            embedder,
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Whether each store is answering, and the model is loaded.
    pub fn stores(&self) -> Vec<StoreStatus> {
        vec![self.pg.status(), self.graph.status()]
    }

    pub fn has_embedder(&self) -> bool {
        self.embedder.is_some()
    }

    fn weight(&self, r: Retriever) -> f64 {
        match r {
            Retriever::Vector => self.cfg.weight_vector,
            Retriever::Keyword => self.cfg.weight_keyword,
            Retriever::Graph => self.cfg.weight_graph,
        }
    }

    /// Answers a search; a store that is away makes the answer degraded, not an error. Only
    /// when no store could answer at all is it [`QueryErrorKind::Unavailable`].
    ///
    /// [`QueryErrorKind::Unavailable`]: crate::QueryErrorKind::Unavailable
    pub async fn search(&self, req: &SearchRequest) -> Result<SearchResponse, QueryError> {
        let started = Instant::now();
        let query = req.query.trim();
        let mut problems = Vec::new();
        if query.is_empty() {
            problems.push("query is empty".to_owned());
        }
        if query.contains('\0') {
            problems.push("query contains a NUL character".to_owned());
        }
        if query.chars().count() > self.cfg.max_query_chars {
            problems.push(format!(
                "query is longer than {} characters",
                self.cfg.max_query_chars
            ));
        }
        let k = req.k.unwrap_or(self.cfg.default_k);
        if k == 0 || k > self.cfg.max_k {
            problems.push(format!("k must be between 1 and {}", self.cfg.max_k));
        }
        let filter = match to_chunk_filter(&req.filters) {
            Ok(f) => Some(f),
            Err(e) => {
                problems.push(e.message);
                None
            }
        };
        let (Some(filter), true) = (filter, problems.is_empty()) else {
            return Err(QueryError::invalid(problems.join("; ")));
        };

        let mode = req.mode;
        let wants = |r: Retriever| mode.retrievers().contains(&r);
        // Fusion needs candidates beyond k from each list; a single mode returns its own top k.
        // The graph too, though it weighs a quarter: at 20 or 10 candidates from it, hybrid
        // recall@10 on the corpus fell from 0.923 to 0.872 (`make bench-query`).
        let depth = if mode == Mode::Hybrid {
            self.cfg.depth.max(k)
        } else {
            k
        };
        let names = kb_parse::question_names(query);
        // The graph is consulted (entities, their neighbours and chunks) when the mode asks for
        // it, or when Postgres is away and its chunks must stand in.
        let walk_graph = wants(Retriever::Graph) || !self.pg.is_up();
        let (vector, keyword, graph) = tokio::join!(
            async {
                if wants(Retriever::Vector) {
                    Some(
                        retrieve::vector(&self.pg, self.embedder.as_ref(), query, &filter, depth)
                            .await,
                    )
                } else {
                    None
                }
            },
            async {
                if wants(Retriever::Keyword) {
                    Some(retrieve::keyword(&self.pg, &self.graph, query, &filter, depth).await)
                } else {
                    None
                }
            },
            async {
                if walk_graph {
                    retrieve::graph(
                        &self.pg,
                        &self.graph,
                        &names,
                        &filter,
                        depth,
                        self.cfg.max_neighbours,
                    )
                    .await
                } else {
                    retrieve::GraphAnswer::none()
                }
            },
        );

        let mut degraded = Vec::new();
        let mut lists = Vec::new();
        let mut answered = false;
        for (r, outcome) in [(Retriever::Vector, vector), (Retriever::Keyword, keyword)] {
            let Some(Outcome { hits, whole }) = outcome else {
                continue;
            };
            if !whole {
                degraded.push(r);
            }
            answered |= whole || !hits.is_empty();
            lists.push(Ranked {
                retriever: r,
                weight: self.weight(r),
                hits,
            });
        }
        let graph_whole = graph.outcome.whole;
        if wants(Retriever::Graph) {
            if !graph_whole {
                degraded.push(Retriever::Graph);
            }
            answered |= graph_whole || !graph.outcome.hits.is_empty();
            lists.push(Ranked {
                retriever: Retriever::Graph,
                weight: self.weight(Retriever::Graph),
                hits: graph.outcome.hits,
            });
        } else if !answered {
            // Postgres is away and it was all this mode asked: the graph's chunks stand in.
            answered = graph_whole || !graph.outcome.hits.is_empty();
            lists.push(Ranked {
                retriever: Retriever::Graph,
                weight: self.weight(Retriever::Graph),
                hits: graph.outcome.hits,
            });
        }
        if !answered {
            QueryServed::unavailable(mode).emit();
            return Err(QueryError::unavailable(format!(
                "no store could answer: postgres {}, graph {}",
                reason(&self.pg.status()),
                reason(&self.graph.status())
            )));
        }
        degraded.sort();
        let results = fuse(lists, self.cfg.rrf_k, k)
            .into_iter()
            .enumerate()
            .map(|(i, f)| hit(i + 1, f.score, f.ranks, f.hit))
            .collect();
        let took = started.elapsed();
        QueryServed {
            mode,
            degraded: &degraded,
            elapsed: took,
        }
        .emit();
        Ok(SearchResponse {
            query: query.to_owned(),
            mode,
            results,
            entities: graph.entities,
            degraded,
            took_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
        })
    }

    /// A document and its chunks: from Postgres, or from the graph when Postgres is away.
    pub async fn document(&self, source_id: &str) -> Result<DocumentResponse, QueryError> {
        if source_id.is_empty() || source_id.len() > 200 || source_id.contains('\0') {
            return Err(QueryError::invalid("source id must be 1 to 200 characters"));
        }
        let sid = source_id.to_owned();
        let (doc, degraded) = match self
            .pg
            .call(|s| async move { s.document(&sid).await })
            .await
        {
            Ok(doc) => (doc, Vec::new()),
            Err(pg_away) => {
                let sid = source_id.to_owned();
                match self
                    .graph
                    .call(|g| async move { g.document(&sid).await })
                    .await
                {
                    Ok(doc) => (doc, vec!["postgres".to_owned()]),
                    Err(graph_away) => {
                        return Err(QueryError::unavailable(format!(
                            "no store could answer: postgres {}, graph {}",
                            pg_away.0, graph_away.0
                        )))
                    }
                }
            }
        };
        let Some(Document { source, chunks }) = doc else {
            return Err(QueryError::not_found(format!("no source {source_id}")));
        };
        Ok(DocumentResponse {
            source_id: source.source_id.clone(),
            version: source.version,
            status: source.status.clone(),
            error: source.error.clone(),
            source: source_out(&source),
            chunks: chunks.into_iter().map(chunk_out).collect(),
            degraded,
        })
    }

    /// Every entity with this name (in any of the forms ingest gives names), with its
    /// relations: from the graph, or from Postgres's copy when the graph is away.
    pub async fn entity(&self, name: &str) -> Result<EntityResponse, QueryError> {
        if name.trim().is_empty() || name.chars().count() > 1000 || name.contains('\0') {
            return Err(QueryError::invalid(
                "entity name must be 1 to 1000 characters",
            ));
        }
        let forms = kb_parse::entities::name_forms(name);
        if forms.is_empty() {
            return Err(QueryError::invalid(format!("{name:?} names nothing")));
        }
        let limit = self.cfg.max_neighbours;
        let forms = &forms;
        let (answer, degraded) = match self
            .graph
            .call(|g| async move { lookup_entities(g.as_ref(), forms, limit).await })
            .await
        {
            Ok(a) => (a, Vec::new()),
            Err(graph_away) => match self
                .pg
                .call(|s| async move { lookup_entities(s.as_ref(), forms, limit).await })
                .await
            {
                Ok(a) => (a, vec!["graph".to_owned()]),
                Err(pg_away) => {
                    return Err(QueryError::unavailable(format!(
                        "no store could answer: graph {}, postgres {}",
                        graph_away.0, pg_away.0
                    )))
                }
            },
        };
        let (found, neighbours) = answer;
        if found.is_empty() {
            return Err(QueryError::not_found(format!("no entity named {name:?}")));
        }
        let entities = found
            .into_iter()
            .map(|e| {
                let mine: Vec<_> = neighbours
                    .iter()
                    .filter(|n| n.of == e.entity.entity_id)
                    .take(limit)
                    .map(neighbour_out)
                    .collect();
                crate::api::EntityOut {
                    entity_id: e.entity.entity_id,
                    name: e.entity.name,
                    canonical_name: e.entity.canonical_name,
                    entity_type: e.entity.entity_type,
                    chunks: e.chunks,
                    sources: e.sources,
                    neighbours: mine,
                }
            })
            .collect();
        Ok(EntityResponse { entities, degraded })
    }
}

/// The entities with one of these canonical names, and their relations (`limit` each).
async fn lookup_entities<E: EntityIndex + ?Sized>(
    index: &E,
    forms: &[String],
    limit: usize,
) -> Result<(Vec<EntityStats>, Vec<Neighbour>), kb_store::StoreError> {
    let found = index.resolve(forms, true).await?;
    let ids: Vec<String> = found.iter().map(|e| e.entity.entity_id.clone()).collect();
    let neighbours = index
        .neighbours(&ids, limit.saturating_mul(ids.len().max(1)))
        .await?;
    Ok((found, neighbours))
}

fn reason(s: &StoreStatus) -> String {
    s.reason.clone().unwrap_or_else(|| "up".into())
}

fn rfc3339(ms: Option<i64>) -> Option<String> {
    let ms = ms?;
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()?
        .format(&Rfc3339)
        .ok()
}

pub(crate) fn source_out(s: &SourceInfo) -> SourceOut {
    SourceOut {
        path: s.path.clone(),
        title: s.title.clone(),
        origin: s.origin.clone(),
        media_type: s.media_type.clone(),
        link: (!s.link.is_empty()).then(|| s.link.clone()),
        modified_at: rfc3339(s.modified_unix_ms),
        document_date: rfc3339(s.document_unix_ms),
    }
}

fn chunk_out(c: ChunkHit) -> ChunkOut {
    ChunkOut {
        chunk_id: c.chunk_id,
        chunk_index: c.chunk_index,
        text: c.text,
        speakers: c.speakers,
        start_seconds: c.start_seconds,
        end_seconds: c.end_seconds,
        section: c.section,
        importance: c.importance,
    }
}

fn hit(rank: usize, score: f64, ranks: crate::api::Ranks, c: ChunkHit) -> Hit {
    Hit {
        rank,
        score,
        ranks,
        source_id: c.source.source_id.clone(),
        chunk_id: c.chunk_id,
        chunk_index: c.chunk_index,
        text: c.text,
        source: source_out(&c.source),
        speakers: c.speakers,
        start_seconds: c.start_seconds,
        end_seconds: c.end_seconds,
        section: c.section,
        importance: c.importance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeStore;
    use std::time::Duration;

    const QUESTION: &str = "What did the Project Manager say about the Remote Control?";

    struct Setup {
        engine: QueryEngine,
        pg: Arc<FakeStore>,
        graph: Arc<FakeStore>,
    }

    fn setup(pg_up: bool, cfg: EngineConfig) -> Setup {
        let deadline = Duration::from_secs(5);
        let pg = Arc::new(FakeStore::default());
        let graph = Arc::new(FakeStore::default());
        let pg_slot: Slot<dyn PgSide> = if pg_up {
            Slot::with_client("postgres", deadline, pg.clone() as Arc<dyn PgSide>)
        } else {
            Slot::new("postgres", deadline, false, 4)
        };
        let graph_slot: Slot<dyn GraphSide> =
            Slot::with_client("graph", deadline, graph.clone() as Arc<dyn GraphSide>);
        Setup {
            engine: QueryEngine::new(cfg, Arc::new(pg_slot), Arc::new(graph_slot), None),
            pg,
            graph,
        }
    }

    fn request(mode: Mode, k: usize) -> SearchRequest {
        SearchRequest {
            query: QUESTION.into(),
            mode,
            k: Some(k),
            filters: Default::default(),
        }
    }

    fn has(calls: &[String], call: &str) -> bool {
        calls.iter().any(|c| c == call)
    }

    #[tokio::test]
    async fn entities_are_counted_on_postgres_and_walked_on_the_graph() {
        let s = setup(true, EngineConfig::default());
        let answer = s.engine.search(&request(Mode::Graph, 10)).await.unwrap();
        assert!(!answer.entities.is_empty(), "the question names entities");
        let (pg, graph) = (s.pg.calls(), s.graph.calls());
        assert!(has(&pg, "resolve"), "postgres counts the mentions: {pg:?}");
        assert!(!has(&graph, "resolve"), "the graph does not: {graph:?}");
        assert!(
            has(&graph, "neighbours") && has(&graph, "mentioning k=10"),
            "{graph:?}"
        );
        assert!(answer.degraded.is_empty(), "{:?}", answer.degraded);
    }

    #[tokio::test]
    async fn without_postgres_the_graph_counts_its_own_entities() {
        let s = setup(false, EngineConfig::default());
        let answer = s.engine.search(&request(Mode::Graph, 10)).await.unwrap();
        assert!(!answer.entities.is_empty());
        assert!(s.pg.calls().is_empty());
        assert!(has(&s.graph.calls(), "resolve"), "{:?}", s.graph.calls());
        assert!(
            answer.degraded.is_empty(),
            "the graph answered its own retriever"
        );
    }

    #[tokio::test]
    async fn hybrid_asks_every_retriever_for_the_fusion_depth() {
        let s = setup(true, EngineConfig::default());
        s.engine.search(&request(Mode::Hybrid, 10)).await.unwrap();
        let depth = EngineConfig::default().depth;
        assert!(
            has(&s.pg.calls(), &format!("keyword k={depth}")),
            "{:?}",
            s.pg.calls()
        );
        let graph = s.graph.calls();
        assert!(has(&graph, &format!("mentioning k={depth}")), "{graph:?}");
    }
}
