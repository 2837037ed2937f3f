//! The `[nats]` section: how every component reaches the broker, and the broker-side limits.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use crate::secret::{redact_url, Secret};

const GIB: u64 = 1024 * 1024 * 1024;

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsSettings {
    /// `nats://` or `tls://`; a password or token in it is never printed (see `redact_url`).
    pub url: String,
    /// Bodies larger than this go through the object store instead of the message.
    pub inline_max_bytes: usize,
    /// A `.creds` file (user JWT and NKey seed), for servers in operator mode.
    pub credentials_file: Option<PathBuf>,
    /// A file holding a user NKey seed (`SU…`).
    pub nkey_seed_file: Option<PathBuf>,
    /// Token authentication.
    pub token: Secret,
    /// User and password authentication; both or neither.
    pub user: String,
    pub password: Secret,
    /// CA certificate(s) to verify the server with (PEM); system roots otherwise.
    pub tls_ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM), for servers that verify clients; both or neither.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// Refuse to talk to the server without TLS (implied by a `tls://` URL).
    pub tls_required: bool,
    /// How often the client pings the server; two missed answers make it reconnect, so this
    /// bounds how long a dead connection goes unnoticed.
    pub ping_interval_secs: u64,
    /// Copies of every stream, KV bucket and the object store in a JetStream cluster (1, 3 or
    /// 5; at most the number of servers). 1 on a single server. Applied when a service
    /// starts, also to what exists already.
    pub replicas: usize,
    /// Broker side (rendered by the local stack and the test kit into the server's config):
    /// `default` flushes JetStream writes every 2 min, `always` before every acknowledgement.
    pub sync: NatsSync,
    /// Broker side: JetStream's `max_file_store`; 0 = 90 % of the free space when the stack
    /// starts.
    pub max_store_bytes: u64,
    /// Stream size limits (0 = unlimited). A full stream refuses publishes; nothing is
    /// trimmed.
    pub source_max_bytes: u64,
    pub parsed_max_bytes: u64,
    pub dlq_max_bytes: u64,
    /// The log of record and the object store: unlimited by default (refused, never trimmed).
    pub mirror_max_bytes: u64,
    pub blobs_max_bytes: u64,
    /// How often the watcher collects bodies no message refers to any more.
    pub blob_gc_interval_secs: u64,
    /// Bodies younger than this are never collected (a body is written before its message).
    pub blob_gc_grace_secs: u64,
    /// How long a deleted source's tombstone is kept (the mirror head, the watcher's state,
    /// its progress records, the stores' tombstone rows); 0 keeps them forever. Collected on
    /// the blob collection's schedule, and only once every consumer of the mirror has it.
    pub tombstone_retention_secs: u64,
}

/// When the broker flushes JetStream writes to disk (`jetstream { sync_interval }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NatsSync {
    /// Every 2 minutes (nats-server's default): a kill -9 loses nothing, power loss may lose
    /// up to 2 min of acknowledged writes.
    #[default]
    Default,
    /// Before every acknowledgement: power loss loses nothing, writes are slower.
    Always,
}

impl NatsSync {
    /// The value of nats-server's `jetstream { sync_interval }`.
    pub fn sync_interval(self) -> &'static str {
        match self {
            NatsSync::Default => "2m",
            NatsSync::Always => "always",
        }
    }
}

impl Default for NatsSettings {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            inline_max_bytes: 256 * 1024,
            credentials_file: None,
            nkey_seed_file: None,
            token: Secret::default(),
            user: String::new(),
            password: Secret::default(),
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            tls_required: false,
            ping_interval_secs: 10,
            replicas: 1,
            sync: NatsSync::Default,
            max_store_bytes: 0,
            source_max_bytes: 2 * GIB,
            parsed_max_bytes: 2 * GIB,
            dlq_max_bytes: GIB,
            mirror_max_bytes: 0,
            blobs_max_bytes: 0,
            blob_gc_interval_secs: 3600,
            blob_gc_grace_secs: 3600,
            tombstone_retention_secs: 30 * 24 * 3600,
        }
    }
}

// By hand: `url` may carry a password or token.
impl fmt::Debug for NatsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsSettings")
            .field("url", &redact_url(&self.url))
            .field("inline_max_bytes", &self.inline_max_bytes)
            .field("credentials_file", &self.credentials_file)
            .field("nkey_seed_file", &self.nkey_seed_file)
            .field("token", &self.token)
            .field("user", &self.user)
            .field("password", &self.password)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("tls_cert_file", &self.tls_cert_file)
            .field("tls_key_file", &self.tls_key_file)
            .field("tls_required", &self.tls_required)
            .field("ping_interval_secs", &self.ping_interval_secs)
            .field("replicas", &self.replicas)
            .field("sync", &self.sync)
            .field("max_store_bytes", &self.max_store_bytes)
            .field("source_max_bytes", &self.source_max_bytes)
            .field("parsed_max_bytes", &self.parsed_max_bytes)
            .field("dlq_max_bytes", &self.dlq_max_bytes)
            .field("mirror_max_bytes", &self.mirror_max_bytes)
            .field("blobs_max_bytes", &self.blobs_max_bytes)
            .field("blob_gc_interval_secs", &self.blob_gc_interval_secs)
            .field("blob_gc_grace_secs", &self.blob_gc_grace_secs)
            .field("tombstone_retention_secs", &self.tombstone_retention_secs)
            .finish()
    }
}

/// Credentials written into `nats.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlAuth {
    /// `nats://token@host`
    Token(Secret),
    /// `nats://user:password@host`
    User { user: String, password: Secret },
}

impl NatsSettings {
    /// Credentials in `url` (the first server naming some), percent-decoded. async-nats
    /// ignores a URL's userinfo; `kb_stream::connect` hands these over instead.
    pub fn url_auth(&self) -> Option<UrlAuth> {
        self.url.split(',').find_map(|u| {
            let rest = u.trim().split_once("://")?.1;
            let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
            let (userinfo, _) = authority.rsplit_once('@')?;
            Some(match userinfo.split_once(':') {
                Some((user, password)) => UrlAuth::User {
                    user: percent_decode(user),
                    password: Secret::new(percent_decode(password)),
                },
                None => UrlAuth::Token(Secret::new(percent_decode(userinfo))),
            })
        })
    }

    /// Validation problems of this section. URLs are printed redacted.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let url = self.url.trim();
        let schemes_ok = !url.is_empty()
            && url.split(',').all(|u| {
                let u = u.trim().to_ascii_lowercase();
                u.starts_with("nats://") || u.starts_with("tls://")
            });
        if !(1..=5).contains(&self.replicas) {
            p.push(format!(
                "nats.replicas (KB_NATS__REPLICAS) must be between 1 and 5 (JetStream's limit), got {}",
                self.replicas
            ));
        }
        if !schemes_ok {
            p.push(format!(
                "nats.url (KB_NATS_URL) must start with nats:// or tls://, got {:?}",
                redact_url(url)
            ));
        }
        if self.inline_max_bytes < 1024 || self.inline_max_bytes > 900 * 1024 {
            p.push("nats.inline_max_bytes must be between 1 KiB and 900 KiB".into());
        }
        let methods = [
            self.url_auth().is_some(),
            self.credentials_file.is_some(),
            self.nkey_seed_file.is_some(),
            !self.token.is_empty(),
            !self.user.is_empty() || !self.password.is_empty(),
        ];
        if methods.iter().filter(|m| **m).count() > 1 {
            p.push(
                "nats: use one of credentials in the URL, credentials_file, nkey_seed_file, token, \
                 or user and password"
                    .into(),
            );
        }
        if self.user.is_empty() != self.password.is_empty() {
            p.push("nats.user and nats.password go together".into());
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            p.push("nats.tls_cert_file and nats.tls_key_file go together".into());
        }
        for (key, file) in [
            ("credentials_file", &self.credentials_file),
            ("nkey_seed_file", &self.nkey_seed_file),
            ("tls_ca_file", &self.tls_ca_file),
            ("tls_cert_file", &self.tls_cert_file),
            ("tls_key_file", &self.tls_key_file),
        ] {
            if let Some(f) = file.as_ref().filter(|f| !f.is_file()) {
                p.push(format!("nats.{key} {} is not a file", f.display()));
            }
        }
        if self.ping_interval_secs == 0 {
            p.push("nats.ping_interval_secs must be at least 1".into());
        }
        // A stream must hold at least one message with an inline body.
        for (key, limit) in [
            ("source_max_bytes", self.source_max_bytes),
            ("parsed_max_bytes", self.parsed_max_bytes),
            ("dlq_max_bytes", self.dlq_max_bytes),
            ("mirror_max_bytes", self.mirror_max_bytes),
        ] {
            if limit != 0 && limit <= self.inline_max_bytes as u64 {
                p.push(format!(
                    "nats.{key} must be 0 (unlimited) or larger than nats.inline_max_bytes"
                ));
            }
        }
        if self.blob_gc_interval_secs == 0 {
            p.push("nats.blob_gc_interval_secs must be at least 1".into());
        }
        // A body is written before the message naming it is published: a short grace would
        // collect bodies still on their way.
        if self.blob_gc_grace_secs < 60 {
            p.push("nats.blob_gc_grace_secs must be at least 60".into());
        }
        // Seconds, not days: a value below a minute is a unit mistake.
        if self.tombstone_retention_secs != 0 && self.tombstone_retention_secs < 60 {
            p.push("nats.tombstone_retention_secs must be 0 (forever) or at least 60".into());
        }
        p
    }
}

/// `%40` → `@`; anything malformed is kept as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(NatsSettings::default().problems(), Vec::<String>::new());
    }

    #[test]
    fn replicas_are_one_to_five() {
        for (replicas, ok) in [(0, false), (1, true), (3, true), (5, true), (6, false)] {
            let p = NatsSettings {
                replicas,
                ..NatsSettings::default()
            }
            .problems();
            assert_eq!(p.is_empty(), ok, "{replicas}: {p:?}");
            if !ok {
                assert!(p[0].contains("nats.replicas"), "{p:?}");
            }
        }
    }

    #[test]
    fn a_bad_url_is_reported_without_its_secret() {
        let s = NatsSettings {
            url: "http://s3cret@broker:4222".into(),
            ..NatsSettings::default()
        };
        let p = s.problems();
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(!p[0].contains("s3cret"), "{p:?}");
        assert!(p[0].contains("http://***@broker:4222"), "{p:?}");
        let s = NatsSettings {
            url: "nats://kb:pa55@broker:4222".into(),
            token: Secret::new("tok"),
            ..NatsSettings::default()
        };
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("pa55") && !debug.contains("tok\""),
            "{debug}"
        );
    }

    #[test]
    fn credentials_in_the_url_are_found_and_decoded() {
        let auth = |url: &str| {
            NatsSettings {
                url: url.into(),
                ..NatsSettings::default()
            }
            .url_auth()
        };
        assert_eq!(auth("nats://127.0.0.1:4222"), None);
        assert_eq!(
            auth("nats://t%40k@h:4222/"),
            Some(UrlAuth::Token(Secret::new("t@k")))
        );
        assert_eq!(
            auth("nats://h1:4222,nats://kb:p%3Aw%zz@h2:4222"),
            Some(UrlAuth::User {
                user: "kb".into(),
                password: Secret::new("p:w%zz"),
            })
        );
        let both = NatsSettings {
            url: "nats://kb:pw@h:4222".into(),
            token: Secret::new("t"),
            ..NatsSettings::default()
        };
        assert_eq!(both.problems().len(), 1, "{:?}", both.problems());
    }

    #[test]
    fn auth_and_tls_options_are_checked_together() {
        let s = NatsSettings {
            token: Secret::new("t"),
            user: "kb".into(),
            tls_cert_file: Some("/nonexistent/cert.pem".into()),
            ping_interval_secs: 0,
            dlq_max_bytes: 1000,
            blob_gc_grace_secs: 0,
            tombstone_retention_secs: 59,
            ..NatsSettings::default()
        };
        let p = s.problems();
        for want in [
            "use one of",
            "user and nats.password go together",
            "tls_cert_file and nats.tls_key_file",
            "tls_cert_file /nonexistent/cert.pem is not a file",
            "ping_interval_secs",
            "dlq_max_bytes",
            "blob_gc_grace_secs",
            "tombstone_retention_secs",
        ] {
            assert!(p.iter().any(|x| x.contains(want)), "{want:?} in {p:?}");
        }
        assert_eq!(p.len(), 8, "{p:?}");
    }
}
