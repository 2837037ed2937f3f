//! Shared setup of the Drive source tests: a private NATS, a fake Drive with a service account,
//! and readers of the real streams and of the `kb_drive` bucket.
#![allow(dead_code)]

use crate::common::{all_messages, connect};
use kb_core::settings::DriveSettings;
use kb_core::Secret;
use kb_drive::fake::FakeDrive;
use kb_proto::{mirror_event::Kind, DeadLetter, Message, MirrorEvent, SourceRef};
use kb_stream::{subjects, Publisher, Topology};
use kb_testkit::NatsServer;
use kb_watcher::drive::{Cursor, DriveFileState, FileRetry, DRIVE_BUCKET};
use kb_watcher::DriveSource;

pub const NAME: &str = "team";
pub const ORIGIN: &str = "drive:team";

pub struct DriveEnv {
    pub nats: NatsServer,
    /// Every source event published: `KB_SOURCE` keeps only the latest per source.
    pub sources: kb_testkit::SubjectTap,
    pub fake: FakeDrive,
    pub topo: Topology,
    pub publisher: Publisher,
    pub settings: DriveSettings,
    /// The watched folder.
    pub root: String,
    /// A folder outside the scope.
    pub outside: String,
}

pub async fn setup() -> DriveEnv {
    let nats = kb_testkit::stack().await.unwrap().nats().await.unwrap();
    let fake = FakeDrive::start().await.unwrap();
    let root = fake.add_folder(None, "Inbox");
    let outside = fake.add_folder(None, "Elsewhere");
    let key = fake.service_account_json("watcher@kb-test.iam.gserviceaccount.com");
    let settings = DriveSettings {
        enabled: true,
        name: NAME.into(),
        folder_ids: vec![root.clone()],
        credentials_json: Secret::new(key),
        api_url: fake.api_url(),
        // Empty: the key file's token_uri (the fake) is used, as with a real key file.
        token_url: String::new(),
        page_size: 100,
        max_file_bytes: 1024 * 1024,
        max_retries: 3,
        backoff_min_ms: 2,
        backoff_max_ms: 20,
        request_timeout_secs: 10,
        ..Default::default()
    };
    let sources = kb_testkit::SubjectTap::start(&nats.url(), subjects::SOURCE_ALL)
        .await
        .unwrap();
    let (topo, publisher) = connect(&nats.url()).await;
    DriveEnv {
        nats,
        sources,
        fake,
        topo,
        publisher,
        settings,
        root,
        outside,
    }
}

impl DriveEnv {
    /// A source on a fresh connection, as a (re)started watcher process would make it.
    pub async fn source(&self) -> DriveSource {
        self.source_with(&self.settings).await
    }

    pub async fn source_with(&self, settings: &DriveSettings) -> DriveSource {
        let (topo, publisher) = connect(&self.nats.url()).await;
        DriveSource::from_settings(settings, &topo.js, publisher)
            .await
            .unwrap()
    }

    pub fn sid(&self, file_id: &str) -> String {
        kb_core::ids::source_id(ORIGIN, file_id)
    }

    /// Every source event published (each once, as the stream deduplicates them), in
    /// publish order, with its body.
    pub async fn source_events(&self) -> Vec<(SourceRef, Vec<u8>)> {
        crate::common::published_sources(&self.sources, &self.publisher).await
    }

    /// The source events of one Drive file.
    pub async fn events_of(&self, file_id: &str) -> Vec<(SourceRef, Vec<u8>)> {
        let sid = self.sid(file_id);
        self.source_events()
            .await
            .into_iter()
            .filter(|(s, _)| s.source_id == sid)
            .collect()
    }

    pub async fn mirror_head(&self, file_id: &str) -> Option<MirrorEvent> {
        let m = self
            .topo
            .mirror
            .get_last_raw_message_by_subject(&subjects::mirror(&self.sid(file_id)))
            .await
            .ok()?;
        Some(MirrorEvent::decode(m.payload.as_ref()).unwrap())
    }

    /// (kind, version) of the mirror's latest event for a file.
    pub async fn mirror_kind(&self, file_id: &str) -> Option<(Kind, u64)> {
        let ev = self.mirror_head(file_id).await?;
        Some((ev.kind(), ev.source.unwrap().version))
    }

    pub async fn dead_letters(&self) -> Vec<DeadLetter> {
        all_messages(&self.topo.dlq)
            .await
            .iter()
            .map(|p| DeadLetter::decode(p.as_slice()).unwrap())
            .collect()
    }

    async fn bucket(&self) -> async_nats::jetstream::kv::Store {
        self.topo.js.get_key_value(DRIVE_BUCKET).await.unwrap()
    }

    pub async fn file_state(&self, file_id: &str) -> Option<DriveFileState> {
        let key = format!("{NAME}.file.{}", self.sid(file_id));
        let bytes = self.bucket().await.get(key).await.unwrap()?;
        Some(serde_json::from_slice(&bytes).unwrap())
    }

    pub async fn cursor(&self) -> Option<Cursor> {
        let bytes = self
            .bucket()
            .await
            .get(format!("{NAME}.cursor"))
            .await
            .unwrap()?;
        Some(serde_json::from_slice(&bytes).unwrap())
    }

    /// The retry entry of a file waiting for another attempt.
    pub async fn retry(&self, file_id: &str) -> Option<FileRetry> {
        let key = format!("{NAME}.retry.{}", self.sid(file_id));
        let bytes = self.bucket().await.get(key).await.unwrap()?;
        Some(serde_json::from_slice(&bytes).unwrap())
    }
}
