//! The graph baseline: the same nodes and relationships written with plain batched
//! `UNWIND $rows AS r MERGE …` statements across all documents, one transaction per batch,
//! with no per-document versioning, locking or cleanup.

use kb_proto::ParsedDocument;
use neo4rs::{query, BoltList, BoltMap, BoltString, BoltType, Graph};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Rows per statement, as the writer sends them.
const BATCH: usize = 500;

fn s(v: &str) -> BoltType {
    BoltType::String(BoltString::new(v))
}
fn map<'a>(pairs: impl IntoIterator<Item = (&'a str, BoltType)>) -> BoltType {
    let mut m = BoltMap::new();
    for (k, v) in pairs {
        m.put(BoltString::new(k), v);
    }
    BoltType::Map(m)
}

async fn unwind(graph: &Graph, cypher: &str, rows: Vec<BoltType>) -> anyhow::Result<()> {
    for batch in rows.chunks(BATCH) {
        let list = BoltType::List(BoltList {
            value: batch.to_vec(),
        });
        graph.run(query(cypher).param("rows", list)).await?;
    }
    Ok(())
}

pub async fn load(graph: &Graph, docs: &[ParsedDocument]) -> anyhow::Result<Duration> {
    let mut sources = Vec::new();
    let mut chunks = Vec::new();
    let mut has_chunk = Vec::new();
    let mut next = Vec::new();
    let mut mentions = Vec::new();
    let mut entities = BTreeMap::new();
    let mut relations: BTreeMap<&str, Vec<BoltType>> = BTreeMap::new();
    for d in docs {
        let src = d.source.clone().unwrap_or_default();
        let sid = src.source_id.as_str();
        sources.push(map([
            ("id", s(sid)),
            (
                "props",
                map([
                    ("source_id", s(sid)),
                    ("version", BoltType::from(src.version as i64)),
                    ("origin", s(&src.origin)),
                    ("path", s(&src.path)),
                    ("content_hash", s(&src.content_hash)),
                    ("media_type", s(&src.media_type)),
                    ("modified_unix_ms", BoltType::from(src.modified_unix_ms)),
                    ("size", BoltType::from(src.size as i64)),
                    ("status", s("ok")),
                    ("title", s(&d.title)),
                    ("parser", s(&d.parser)),
                ]),
            ),
        ]));
        for c in &d.chunks {
            chunks.push(map([
                ("id", s(&c.chunk_id)),
                (
                    "props",
                    map([
                        ("source_id", s(sid)),
                        ("index", BoltType::from(i64::from(c.index))),
                        ("text", s(&c.text)),
                        (
                            "importance_score",
                            BoltType::from(f64::from(c.importance_score)),
                        ),
                        ("token_count", BoltType::from(i64::from(c.token_count))),
                        ("start_offset", BoltType::from(c.start_offset as i64)),
                        ("end_offset", BoltType::from(c.end_offset as i64)),
                        (
                            "speakers",
                            BoltType::List(BoltList {
                                value: c.speakers.iter().map(|x| s(x)).collect(),
                            }),
                        ),
                        ("section", s(&c.section)),
                        ("start_seconds", BoltType::from(c.start_seconds)),
                        ("end_seconds", BoltType::from(c.end_seconds)),
                    ]),
                ),
            ]));
            has_chunk.push(map([("s", s(sid)), ("c", s(&c.chunk_id))]));
        }
        for w in d.chunks.windows(2) {
            next.push(map([("a", s(&w[0].chunk_id)), ("b", s(&w[1].chunk_id))]));
        }
        for e in &d.entities {
            entities.entry(e.entity_id.clone()).or_insert_with(|| {
                map([
                    ("id", s(&e.entity_id)),
                    (
                        "props",
                        map([
                            ("name", s(&e.name)),
                            ("canonical_name", s(&e.canonical_name)),
                            ("entity_type", s(&e.entity_type)),
                        ]),
                    ),
                ])
            });
        }
        for m in &d.mentions {
            mentions.push(map([
                ("c", s(&m.chunk_id)),
                ("e", s(&m.entity_id)),
                ("n", BoltType::from(i64::from(m.count))),
            ]));
        }
        for r in &d.relations {
            relations
                .entry(match r.relation_type.as_str() {
                    "CO_OCCURS" => "CO_OCCURS",
                    "DISCUSSES" => "DISCUSSES",
                    "BELONGS_TO" => "BELONGS_TO",
                    "MENTIONED_WITH" => "MENTIONED_WITH",
                    _ => "RELATED_TO",
                })
                .or_default()
                .push(map([
                    ("a", s(&r.source_entity_id)),
                    ("b", s(&r.target_entity_id)),
                    ("sid", s(sid)),
                    ("w", BoltType::from(f64::from(r.weight))),
                ]));
        }
    }

    let started = Instant::now();
    unwind(
        graph,
        "UNWIND $rows AS r MERGE (n:Source {source_id: r.id}) SET n += r.props",
        sources,
    )
    .await?;
    unwind(
        graph,
        "UNWIND $rows AS r MERGE (n:Entity {entity_id: r.id}) SET n += r.props",
        entities.into_values().collect(),
    )
    .await?;
    unwind(
        graph,
        "UNWIND $rows AS r MERGE (n:Chunk {chunk_id: r.id}) SET n += r.props",
        chunks,
    )
    .await?;
    // Starting the pattern at the chunk keeps MERGE from scanning a source's growing list.
    unwind(
        graph,
        "UNWIND $rows AS r MATCH (c:Chunk {chunk_id: r.c}) MATCH (s:Source {source_id: r.s}) \
         MERGE (c)<-[:HAS_CHUNK]-(s)",
        has_chunk,
    )
    .await?;
    unwind(
        graph,
        "UNWIND $rows AS r MATCH (a:Chunk {chunk_id: r.a}) MATCH (b:Chunk {chunk_id: r.b}) \
         MERGE (a)-[:NEXT]->(b)",
        next,
    )
    .await?;
    unwind(
        graph,
        "UNWIND $rows AS r MATCH (c:Chunk {chunk_id: r.c}) MATCH (e:Entity {entity_id: r.e}) \
         MERGE (c)-[m:MENTIONS]->(e) SET m.count = r.n",
        mentions,
    )
    .await?;
    for (ty, rows) in relations {
        unwind(
            graph,
            &format!(
                "UNWIND $rows AS r MATCH (a:Entity {{entity_id: r.a}}) \
                 MATCH (b:Entity {{entity_id: r.b}}) \
                 MERGE (a)-[x:{ty} {{source_id: r.sid}}]->(b) SET x.weight = r.w"
            ),
            rows,
        )
        .await?;
    }
    Ok(started.elapsed())
}

/// Nodes plus relationships in the database.
pub async fn items(graph: &Graph) -> anyhow::Result<u64> {
    let mut n = 0;
    for q in [
        "MATCH (n) WHERE NOT n:Tombstone RETURN count(n) AS n",
        "MATCH ()-[r]->() RETURN count(r) AS n",
    ] {
        let mut rows = graph.execute(query(q)).await?;
        if let Some(row) = rows.next().await? {
            n += row.get::<i64>("n")?.max(0) as u64;
        }
    }
    Ok(n)
}
