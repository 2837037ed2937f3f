//! NATS JetStream wiring: streams, consumers, publishing, blobs and the consume/ack/retry loop
