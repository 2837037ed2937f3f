//! NATS JetStream wiring shared by every stage: the subject and stream layout, publishing with
//! deduplication and last-writer-wins on the mirror stream, big bodies through the object
//! store, progress records, the consume/ack/retry loop with dead letters, and the way a stage
//! takes in one event.

pub mod alerts;
pub mod blob;
pub mod consume;
pub mod error;
pub mod gc;
pub mod input;
pub mod journal;
pub mod periodic;
pub mod progress;
pub mod publish;
pub mod retention;
pub mod subjects;
pub mod topology;
pub mod wire;

pub use blob::Blobs;
pub use consume::{ConsumerSpec, Delivery, Done, GiveUp, Handler, HandlerError, LoopOptions};
pub use error::{StreamError, StreamErrorKind};
/// The one change type from the stream to the stores: what [`Publisher::mirror`] publishes
/// and a writer applies.
pub use kb_store::Change;
pub use progress::{Progress, ProgressRecord};
pub use publish::{Mirrored, Publisher};
pub use topology::Topology;
pub use wire::{DeadLetterKind, Header, OutcomeLabel, ProgressStatus, Stage, UnknownName};

use std::borrow::Cow;
use std::time::Duration;

use async_nats::{jetstream, ConnectErrorKind, ConnectOptions};
use kb_core::secret::redact_url;
use kb_core::settings::{NatsSettings, UrlAuth};

/// What [`connect`] connects with: the `[nats]` settings, or a bare URL (tests, tools), which
/// means the defaults of every other option.
pub trait NatsTarget {
    fn nats_settings(&self) -> Cow<'_, NatsSettings>;
}

impl NatsTarget for NatsSettings {
    fn nats_settings(&self) -> Cow<'_, NatsSettings> {
        Cow::Borrowed(self)
    }
}

impl NatsTarget for str {
    fn nats_settings(&self) -> Cow<'_, NatsSettings> {
        Cow::Owned(NatsSettings {
            url: self.to_owned(),
            ..NatsSettings::default()
        })
    }
}

impl NatsTarget for String {
    fn nats_settings(&self) -> Cow<'_, NatsSettings> {
        self.as_str().nats_settings()
    }
}

/// Connects to NATS with the `[nats]` options (credentials file, NKey, token, user and
/// password, TLS, ping interval). Refused credentials or TLS and a malformed URL fail at once
/// (`Config`); an unreachable broker is retried in the background, so services can start
/// before it. The URL is only ever shown redacted.
pub async fn connect<T: NatsTarget + ?Sized>(
    target: &T,
    name: &str,
) -> Result<(async_nats::Client, jetstream::Context), StreamError> {
    let nats = target.nats_settings();
    let shown = redact_url(&nats.url);
    let failed = || format!("cannot connect to NATS at {shown}");
    // A cluster's servers as a comma-separated list: async-nats parses a string as one URL.
    let servers: Vec<&str> = nats
        .url
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let client = match options(&nats, name).await?.connect(&servers).await {
        Ok(client) => client,
        Err(e) if broker_not_there_yet(&e) => {
            tracing::warn!(url = %shown, error = %e, "NATS not reachable yet; connecting in the background");
            options(&nats, name)
                .await?
                .retry_on_initial_connect()
                .connect(&servers)
                .await
                .map_err(|e| StreamError::transient(failed(), e))?
        }
        Err(e) => {
            let hint = match e.kind() {
                ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication => {
                    " (check the credentials: nats.url, token, user and password, \
                     nkey_seed_file or credentials_file)"
                }
                _ if e.to_string().contains("certificate") || e.kind() == ConnectErrorKind::Tls => {
                    " (check TLS: nats.tls_ca_file, tls_cert_file, tls_key_file, tls_required)"
                }
                _ => "",
            };
            let message = format!("{}{hint}", failed());
            return Err(StreamError::with(StreamErrorKind::Config, message, e));
        }
    };
    let js = jetstream::new(client.clone());
    Ok((client, js))
}

/// `/readyz` says "not ready: nats" while the client is disconnected (it reconnects by itself).
pub fn watch_connection(health: &kb_core::telemetry::Health, client: async_nats::Client) {
    health.add_check("nats", move || {
        client.connection_state() == async_nats::connection::State::Connected
    });
}

/// No connection could be made (a broker still starting, or restarting); these heal. Once
/// TCP is connected, a failure (TLS, credentials, protocol) is the configuration's.
fn broker_not_there_yet(e: &async_nats::ConnectError) -> bool {
    use std::io::ErrorKind as Io;
    match e.kind() {
        ConnectErrorKind::TimedOut | ConnectErrorKind::Dns | ConnectErrorKind::MaxReconnects => {
            true
        }
        // async-nats files TLS handshake failures under `Io` too: look at the cause.
        ConnectErrorKind::Io => std::error::Error::source(e)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .is_some_and(|io| {
                matches!(
                    io.kind(),
                    Io::ConnectionRefused
                        | Io::TimedOut
                        | Io::HostUnreachable
                        | Io::NetworkUnreachable
                        | Io::AddrNotAvailable
                )
            }),
        _ => false,
    }
}

async fn options(nats: &NatsSettings, name: &str) -> Result<ConnectOptions, StreamError> {
    let config =
        |what: String, e: std::io::Error| StreamError::with(StreamErrorKind::Config, what, e);
    let mut o = ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(5))
        .ping_interval(Duration::from_secs(nats.ping_interval_secs.max(1)))
        // Behind a proxy or load balancer the servers a cluster advertises are unreachable;
        // the configured URL is the way in.
        .ignore_discovered_servers();
    if let Some(f) = &nats.credentials_file {
        o = o.credentials_file(f).await.map_err(|e| {
            config(
                format!("cannot use nats.credentials_file {}", f.display()),
                e,
            )
        })?;
    }
    if let Some(f) = &nats.nkey_seed_file {
        let seed = tokio::fs::read_to_string(f).await.map_err(|e| {
            config(
                format!("cannot read nats.nkey_seed_file {}", f.display()),
                e,
            )
        })?;
        o = o.nkey(seed.trim().to_owned());
    }
    if !nats.token.is_empty() {
        o = o.token(nats.token.expose().to_owned());
    }
    if !nats.user.is_empty() {
        o = o.user_and_password(nats.user.clone(), nats.password.expose().to_owned());
    }
    // async-nats ignores a URL's userinfo; validation lets it stand alone only.
    match nats.url_auth() {
        Some(UrlAuth::Token(token)) => o = o.token(token.expose().to_owned()),
        Some(UrlAuth::User { user, password }) => {
            o = o.user_and_password(user, password.expose().to_owned())
        }
        None => {}
    }
    if let Some(ca) = &nats.tls_ca_file {
        o = o.add_root_certificates(ca.clone());
    }
    if let (Some(cert), Some(key)) = (&nats.tls_cert_file, &nats.tls_key_file) {
        o = o.add_client_certificate(cert.clone(), key.clone());
    }
    if nats.tls_required {
        o = o.require_tls(true);
    }
    Ok(o)
}
