//! The read contract on real servers: the same documents written by the writers' own code into
//! Postgres and the graph give the same answers from both (so either can stand in for the
//! other), and every filter narrows the same way in each.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use kb_graph::{GraphConfig, GraphStore};
use kb_pg::PgStore;
use kb_proto::{Chunk, Entity, Mention, ParsedDocument, Relation, SourceRef};
use kb_store::read::{
    ChunkFilter, ChunkHit, DocumentStore, EntityIndex, MediaTypeFilter, OriginFilter, TextIndex,
    TextScan,
};
use kb_store::{Change, MirrorStore};

const DIMS: usize = 8;
const MAY_2024: i64 = 1_714_521_600_000; // 2024-05-01T00:00:00Z
const JAN_2023: i64 = 1_672_531_200_000; // 2023-01-01T00:00:00Z

struct Doc {
    id: &'static str,
    path: &'static str,
    origin: &'static str,
    media_type: &'static str,
    link: &'static str,
    modified_ms: i64,
    document_ms: i64,
    /// (text, speakers, entity names mentioned)
    chunks: Vec<(&'static str, Vec<&'static str>, Vec<&'static str>)>,
    relations: Vec<(&'static str, &'static str, &'static str, f32)>,
}

fn entity(name: &str) -> Entity {
    let canonical = kb_parse::canonical_name(name);
    Entity {
        entity_id: kb_parse::ids::entity_id("TOPIC", &canonical),
        name: name.into(),
        canonical_name: canonical,
        entity_type: "TOPIC".into(),
    }
}

/// A unit vector per chunk position, so nearest-neighbour answers are known.
fn axis(i: usize) -> Vec<f32> {
    let mut v = vec![0.0; DIMS];
    v[i % DIMS] = 1.0;
    v
}

fn build(d: &Doc) -> ParsedDocument {
    let source = SourceRef {
        source_id: d.id.into(),
        version: 1,
        origin: d.origin.into(),
        path: d.path.into(),
        content_hash: format!("hash-{}", d.id),
        media_type: d.media_type.into(),
        modified_unix_ms: d.modified_ms,
        size: 100,
        link: d.link.into(),
    };
    let mut entities: Vec<Entity> = Vec::new();
    let mut mentions = Vec::new();
    let chunks = d
        .chunks
        .iter()
        .enumerate()
        .map(|(i, (text, speakers, names))| {
            let chunk_id = format!("{}-c{i}", d.id);
            for n in names {
                let e = entity(n);
                mentions.push(Mention {
                    chunk_id: chunk_id.clone(),
                    entity_id: e.entity_id.clone(),
                    count: 1 + i as u32,
                });
                if !entities.iter().any(|x| x.entity_id == e.entity_id) {
                    entities.push(e);
                }
            }
            Chunk {
                chunk_id,
                index: i as u32,
                text: (*text).into(),
                importance_score: 0.5,
                start_offset: 0,
                end_offset: text.len() as u64,
                token_count: 10,
                speakers: speakers.iter().map(|s| (*s).into()).collect(),
                start_seconds: if speakers.is_empty() {
                    -1.0
                } else {
                    60.0 * i as f64
                },
                end_seconds: if speakers.is_empty() {
                    -1.0
                } else {
                    60.0 * i as f64 + 30.0
                },
                section: String::new(),
                embedding: axis(i + d.id.len()),
            }
        })
        .collect();
    let relations = d
        .relations
        .iter()
        .map(|(a, b, ty, w)| Relation {
            source_entity_id: entity(a).entity_id,
            target_entity_id: entity(b).entity_id,
            relation_type: (*ty).into(),
            weight: *w,
        })
        .collect();
    ParsedDocument {
        source: Some(source),
        title: format!("Title of {}", d.id),
        chunks,
        entities,
        mentions,
        relations,
        embedding_model: "test".into(),
        embedding_dimensions: DIMS as u32,
        parser: "test/1".into(),
        document_unix_ms: d.document_ms,
    }
}

fn corpus() -> Vec<ParsedDocument> {
    vec![
        build(&Doc {
            id: "meet",
            path: "meetings/2024/kickoff.txt",
            origin: "folder:inbox",
            media_type: "text/plain",
            link: "",
            modified_ms: JAN_2023, // the file is old, the meeting's own date is what counts
            document_ms: MAY_2024,
            chunks: vec![
                (
                    "Project Manager: We decided the budget for the remote control is twelve euros.",
                    vec!["Project Manager"],
                    vec!["budget", "remote control"],
                ),
                (
                    "Marketing: Users want a remote control that is trendy and easy to find.",
                    vec!["Marketing"],
                    vec!["remote control"],
                ),
            ],
            relations: vec![("budget", "remote control", "CO_OCCURS", 2.0)],
        }),
        build(&Doc {
            id: "note",
            path: "notes/design.md",
            origin: "drive:drive",
            media_type: "text/markdown",
            link: "https://drive.google.com/file/d/abc/view",
            modified_ms: JAN_2023,
            document_ms: 0,
            chunks: vec![
                (
                    "# Design\nThe battery of the remote control lasts a year.",
                    vec![],
                    vec!["battery", "remote control"],
                ),
                ("Kinetic charging was rejected as too costly.", vec![], vec!["battery"]),
            ],
            relations: vec![("battery", "remote control", "DISCUSSES", 1.0)],
        }),
    ]
}

struct Stores {
    pg: PgStore,
    graph: GraphStore,
}

async fn stores() -> Stores {
    let stack = kb_testkit::stack().await.unwrap();
    let pg = PgStore::connect(&stack.fresh_postgres().await.unwrap(), DIMS, 4)
        .await
        .unwrap();
    let db = stack.fresh_graph().await.unwrap();
    let graph = GraphStore::connect(&GraphConfig {
        uri: db.uri.clone(),
        user: db.user.clone(),
        password: db.password.clone(),
        database: Some(db.database.clone()),
        max_connections: 4,
    })
    .await
    .unwrap();
    pg.prepare().await.unwrap();
    graph.prepare().await.unwrap();
    for doc in corpus() {
        pg.apply(Change::Upsert(&doc)).await.unwrap();
        graph.apply(Change::Upsert(&doc)).await.unwrap();
    }
    Stores { pg, graph }
}

fn ids(hits: &[ChunkHit]) -> Vec<String> {
    hits.iter().map(|h| h.chunk_id.clone()).collect()
}

fn id_set(hits: &[ChunkHit]) -> BTreeSet<String> {
    hits.iter().map(|h| h.chunk_id.clone()).collect()
}

/// Every filter, alone, with the chunks it must leave.
fn filters() -> Vec<(&'static str, ChunkFilter, Vec<&'static str>)> {
    let f = ChunkFilter::default;
    vec![
        (
            "none",
            f(),
            vec!["meet-c0", "meet-c1", "note-c0", "note-c1"],
        ),
        (
            "path prefix",
            ChunkFilter {
                path_prefix: Some("meetings/".into()),
                ..f()
            },
            vec!["meet-c0", "meet-c1"],
        ),
        (
            "path prefix is literal",
            ChunkFilter {
                path_prefix: Some("meetings%".into()),
                ..f()
            },
            vec![],
        ),
        (
            "origin drive",
            ChunkFilter {
                origin: Some(OriginFilter::Drive),
                ..f()
            },
            vec!["note-c0", "note-c1"],
        ),
        (
            "origin folder",
            ChunkFilter {
                origin: Some(OriginFilter::Folder),
                ..f()
            },
            vec!["meet-c0", "meet-c1"],
        ),
        (
            "origin exact",
            ChunkFilter {
                origin: Some(OriginFilter::Exact("folder:other".into())),
                ..f()
            },
            vec![],
        ),
        (
            "media family",
            ChunkFilter {
                media_type: Some(MediaTypeFilter::Prefix("text/".into())),
                ..f()
            },
            vec!["meet-c0", "meet-c1", "note-c0", "note-c1"],
        ),
        (
            "media exact",
            ChunkFilter {
                media_type: Some(MediaTypeFilter::Exact("text/markdown".into())),
                ..f()
            },
            vec!["note-c0", "note-c1"],
        ),
        (
            "speaker",
            ChunkFilter {
                speaker: Some("market".into()),
                ..f()
            },
            vec!["meet-c1"],
        ),
        (
            // the meeting's own date (May 2024) counts, not its file's (2023)
            "from a date",
            ChunkFilter {
                from_unix_ms: Some(MAY_2024 - 1000),
                ..f()
            },
            vec!["meet-c0", "meet-c1"],
        ),
        (
            "until a date",
            ChunkFilter {
                to_unix_ms: Some(MAY_2024 - 1000),
                ..f()
            },
            vec!["note-c0", "note-c1"],
        ),
        (
            "entity",
            ChunkFilter {
                entity_names: vec!["budget".into()],
                ..f()
            },
            vec!["meet-c0"],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_stores_answer_the_same_and_filter_the_same() {
    let s = stores().await;
    let every: Vec<String> = ["budget", "remote control", "battery"]
        .iter()
        .map(|n| kb_parse::canonical_name(n))
        .collect();

    // Entities: same stats and same relations from both stores.
    let pg_found = s.pg.resolve(&every, true).await.unwrap();
    let graph_found = s.graph.resolve(&every, true).await.unwrap();
    assert_eq!(pg_found, graph_found);
    // Without sources: the same counts, and nothing claimed about sources.
    let pg_quick = s.pg.resolve(&every, false).await.unwrap();
    assert_eq!(pg_quick, s.graph.resolve(&every, false).await.unwrap());
    assert!(pg_quick
        .iter()
        .all(|e| e.sources.is_none() && e.total_chunks == 4));
    assert_eq!(
        pg_quick.iter().map(|e| e.chunks).collect::<Vec<_>>(),
        pg_found.iter().map(|e| e.chunks).collect::<Vec<_>>()
    );
    let rc = pg_found
        .iter()
        .find(|e| e.entity.canonical_name == "remote control")
        .unwrap();
    assert_eq!((rc.chunks, rc.sources), (3, Some(2)));
    let ids_all: Vec<String> = pg_found
        .iter()
        .map(|e| e.entity.entity_id.clone())
        .collect();
    let mut pg_n = s.pg.neighbours(&ids_all, 10).await.unwrap();
    let mut graph_n = s.graph.neighbours(&ids_all, 10).await.unwrap();
    let key = |n: &kb_store::read::Neighbour| {
        (n.of.clone(), n.entity.entity_id.clone(), n.relation.clone())
    };
    pg_n.sort_by_key(key);
    graph_n.sort_by_key(key);
    assert_eq!(pg_n, graph_n);
    assert_eq!(
        pg_n.len(),
        4,
        "two relations, seen from both ends: {pg_n:?}"
    );
    assert!(pg_n.iter().any(|n| n.relation == "DISCUSSES"
        && n.direction == "out"
        && n.entity.name == "remote control"));

    // Chunks mentioning weighted entities: same order (count × weight) from both.
    let weights = vec![(ids_all[0].clone(), 1.0), (ids_all[1].clone(), 0.5)];
    let pg_m =
        s.pg.mentioning(&weights, &ChunkFilter::default(), 10)
            .await
            .unwrap();
    let graph_m = s
        .graph
        .mentioning(&weights, &ChunkFilter::default(), 10)
        .await
        .unwrap();
    assert_eq!(ids(&pg_m), ids(&graph_m));
    assert!(!pg_m.is_empty());

    // Every filter narrows the same way in every read that takes one.
    let entity_weights: Vec<(String, f64)> = ids_all.iter().map(|id| (id.clone(), 1.0)).collect();
    let words = vec![
        "remote".to_owned(),
        "kinetic".to_owned(),
        "budget".to_owned(),
    ];
    for (name, filter, want) in filters() {
        let want: BTreeSet<String> = want.iter().map(|s| (*s).to_owned()).collect();
        let pg_m = s.pg.mentioning(&entity_weights, &filter, 10).await.unwrap();
        let graph_m = s
            .graph
            .mentioning(&entity_weights, &filter, 10)
            .await
            .unwrap();
        assert_eq!(id_set(&pg_m), want, "postgres mentioning, filter {name}");
        assert_eq!(id_set(&graph_m), want, "graph mentioning, filter {name}");
        let scan = s.graph.scan(&words, &filter, 10).await.unwrap();
        assert_eq!(id_set(&scan), want, "graph text scan, filter {name}");
        let near = s.pg.nearest(&axis(0), &filter, 10).await.unwrap();
        assert_eq!(id_set(&near), want, "nearest, filter {name}");
        let kw =
            s.pg.keyword("remote control budget kinetic", &filter, 10)
                .await
                .unwrap();
        assert_eq!(id_set(&kw), want, "keyword, filter {name}");
    }

    // Documents: the same chunks in order, with provenance, from both.
    let pg_doc = s.pg.document("meet").await.unwrap().unwrap();
    let graph_doc = s.graph.document("meet").await.unwrap().unwrap();
    assert_eq!(ids(&pg_doc.chunks), ["meet-c0", "meet-c1"]);
    assert_eq!(ids(&pg_doc.chunks), ids(&graph_doc.chunks));
    assert_eq!(pg_doc.source, graph_doc.source);
    assert_eq!(pg_doc.source.document_unix_ms, Some(MAY_2024));
    assert_eq!(pg_doc.chunks[1].speakers, ["Marketing"]);
    assert_eq!(graph_doc.chunks[1].start_seconds, Some(60.0));
    assert_eq!(pg_doc.chunks[1].end_seconds, Some(90.0));
    let note = s.graph.document("note").await.unwrap().unwrap();
    assert_eq!(note.source.link, "https://drive.google.com/file/d/abc/view");
    assert_eq!(note.chunks[0].start_seconds, None);
    assert_eq!(
        s.pg.document("note").await.unwrap().unwrap().source,
        note.source
    );
    assert!(s.pg.document("nope").await.unwrap().is_none());
    assert!(s.graph.document("nope").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyword_search_ranks_rare_words_and_honours_web_syntax() {
    let s = stores().await;
    let all = ChunkFilter::default();
    // Stemming: "decisions" finds "decided"; the rare word outranks the common one.
    let hits =
        s.pg.keyword("what were the decisions on budgets?", &all, 10)
            .await
            .unwrap();
    assert_eq!(ids(&hits)[0], "meet-c0");
    let hits =
        s.pg.keyword("remote control kinetic", &all, 10)
            .await
            .unwrap();
    assert_eq!(
        ids(&hits)[0],
        "note-c1",
        "kinetic is in one chunk, remote in three"
    );
    assert_eq!(hits.len(), 4);
    // Web-search syntax is taken literally: a phrase, and an exclusion.
    let hits =
        s.pg.keyword("\"remote control\" -battery", &all, 10)
            .await
            .unwrap();
    assert_eq!(
        id_set(&hits),
        ["meet-c0", "meet-c1"].map(String::from).into()
    );
    // Nothing to search for is an empty answer, not an error.
    assert!(s
        .pg
        .keyword("the of and", &all, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(s.pg.keyword("zyzzyva", &all, 10).await.unwrap().is_empty());
    // Quotes and backslashes in the query are data.
    assert!(s.pg.keyword("o'neil \\ ' \" ", &all, 10).await.is_ok());
}
