//! The parser stage with `[llm] enabled` against a real NATS and a local chat-completions
//! server: the LLM's entities and typed relations reach the parsed document next to the local
//! extractor's, and a failing LLM (401) leaves the document to the local extractor instead of
//! dead-lettering it.

#![allow(clippy::unwrap_used)] // tests may unwrap

#[path = "../../../crates/kb-llm/tests/llm/fake.rs"]
#[allow(dead_code)]
mod fake;

use std::time::{Duration, Instant};

use kb_core::service::Context;
use kb_core::settings::LlmProvider;
use kb_core::telemetry::Health;
use kb_core::Settings;
use kb_proto::{Message, ParsedDocument, ParsedEvent, SourceRef};
use kb_stream::topology::Topology;
use kb_stream::{subjects, Publisher};
use tokio_util::sync::CancellationToken;

const TEXT: &str = "Ada Lovelace explained the quantum widget ledger to Acme Corp in London. \
She said the quantum widget ledger would be ready by spring.";

const NAMES: &[(&str, &str)] = &[
    ("Ada Lovelace", "person"),
    ("Acme Corp", "organization"),
    ("quantum widget ledger", "topic"),
];
const RELATIONS: &[(&str, &str, &str, f64)] = &[
    ("Ada Lovelace", "Acme Corp", "belongs_to", 0.9),
    ("Ada Lovelace", "quantum widget ledger", "discusses", 0.8),
];

struct Run {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Run {
    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}

fn start(nats_url: &str, llm_base: &str) -> Run {
    let mut settings = Settings::default();
    settings.nats.url = nats_url.into();
    settings.llm.enabled = true;
    settings.llm.provider = LlmProvider::Openai;
    settings.llm.base_url = llm_base.into();
    settings.llm.model = "fake-model".into();
    settings.llm.max_retries = 0;
    let shutdown = CancellationToken::new();
    let ctx = Context {
        name: "kb-parser",
        shutdown: shutdown.clone(),
        health: Health::default(),
    };
    Run {
        shutdown,
        task: tokio::spawn(kb_parser::run(settings, ctx)),
    }
}

fn source(id: &str) -> SourceRef {
    SourceRef {
        source_id: id.into(),
        version: 1,
        origin: "test".into(),
        path: format!("{id}.txt"),
        ..SourceRef::default()
    }
}

/// What the local extractor alone makes of the text.
fn local(id: &str) -> ParsedDocument {
    let opts = kb_parser::parse_options(&Settings::default().parser);
    kb_parse::parse(&source(id), TEXT.as_bytes(), &opts).unwrap()
}

fn belongs_to(doc: &ParsedDocument) -> bool {
    doc.relations
        .iter()
        .any(|r| r.relation_type == "BELONGS_TO")
}

async fn publish(publisher: &Publisher, id: &str) {
    let source = source(id);
    publisher
        .source(&source, TEXT.as_bytes().to_vec())
        .await
        .unwrap();
}

async fn parsed(topo: &Topology, publisher: &Publisher, id: &str) -> ParsedDocument {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(m) = topo
            .parsed
            .get_last_raw_message_by_subject(&subjects::parsed(id))
            .await
        {
            let ev = ParsedEvent::decode(m.payload.as_ref()).unwrap();
            let body = publisher.blobs().fetch(&ev.body.unwrap()).await.unwrap();
            return ParsedDocument::decode(body.as_ref()).unwrap();
        }
        assert!(Instant::now() < deadline, "{id} was never parsed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn entity<'a>(doc: &'a ParsedDocument, name: &str) -> Option<&'a kb_proto::Entity> {
    doc.entities.iter().find(|e| e.name == name)
}

#[tokio::test]
async fn llm_entities_and_relations_reach_the_document_and_a_failing_llm_stops_nothing() {
    let nats = kb_testkit::stack().await.unwrap().nats().await.unwrap();
    let (_client, js) = kb_stream::connect(&nats.url(), "parser-llm-test")
        .await
        .unwrap();
    let topo = kb_stream::topology::ensure(&js).await.unwrap();
    let publisher = Publisher::new(&topo, 256 * 1024);

    // A model that knows the names above.
    let good = fake::Fake::start(vec![], Duration::ZERO, fake::knowing(NAMES, RELATIONS)).await;
    let run = start(&nats.url(), &good.base_url);
    publish(&publisher, "llm-ok").await;
    let doc = parsed(&topo, &publisher, "llm-ok").await;
    run.stop().await;
    assert!(!good.seen().is_empty(), "the LLM was never asked");
    assert!(
        !belongs_to(&local("llm-ok")),
        "the local extractor has no BELONGS_TO here"
    );
    let topic = entity(&doc, "quantum widget ledger")
        .unwrap_or_else(|| panic!("no LLM topic in {:#?}", doc.entities));
    assert_eq!(topic.entity_type, "TOPIC");
    let ada = entity(&doc, "Ada Lovelace").unwrap();
    let acme = entity(&doc, "Acme Corp").unwrap();
    assert!(
        doc.relations
            .iter()
            .any(|r| r.source_entity_id == ada.entity_id
                && r.target_entity_id == acme.entity_id
                && r.relation_type == "BELONGS_TO"),
        "no BELONGS_TO relation in {:#?}",
        doc.relations
    );
    assert!(doc.mentions.iter().any(|m| m.entity_id == topic.entity_id));

    // A server that refuses the key: the document still goes on, with the local extraction.
    let refusing = fake::Fake::start(vec![], Duration::ZERO, |_| {
        fake::Reply::error(401, "Unauthorized", "invalid_request_error")
    })
    .await;
    let run = start(&nats.url(), &refusing.base_url);
    publish(&publisher, "llm-refused").await;
    let doc = parsed(&topo, &publisher, "llm-refused").await;
    run.stop().await;
    assert!(!refusing.seen().is_empty(), "the LLM was never asked");
    let alone = local("llm-refused");
    assert_eq!(doc.chunks, alone.chunks);
    assert_eq!(
        doc.entities, alone.entities,
        "the local extraction, unchanged"
    );
    assert_eq!(doc.relations, alone.relations);
    assert!(!doc.entities.is_empty());
    let dlq = topo.dlq.clone().info().await.unwrap().state.messages;
    assert_eq!(dlq, 0, "nothing is dead-lettered for an LLM failure");
}
