//! NATS JetStream wiring shared by every stage: the subject and stream layout, publishing with
//! deduplication and last-writer-wins on the mirror stream, big bodies through the object
//! store, progress records, the consume/ack/retry loop with dead letters, and the way a stage
//! takes in one event.

pub mod blob;
pub mod consume;
pub mod error;
pub mod input;
pub mod progress;
pub mod publish;
pub mod subjects;
pub mod topology;

pub use blob::Blobs;
pub use consume::{ConsumerSpec, Delivery, Handler, HandlerError, Outcome};
pub use error::{StreamError, StreamErrorKind};
pub use progress::{Progress, ProgressRecord};
pub use publish::{MirrorPublish, Publisher};
pub use topology::Topology;

use async_nats::jetstream;
use std::time::Duration;

/// Connects to NATS, retrying the first connection so services can start before the broker.
pub async fn connect(
    url: &str,
    name: &str,
) -> Result<(async_nats::Client, jetstream::Context), StreamError> {
    let client = async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(|e| StreamError::transient(format!("cannot connect to NATS at {url}"), e))?;
    let js = jetstream::new(client.clone());
    Ok((client, js))
}
