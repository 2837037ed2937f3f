//! Generated protobuf types of the kb-mirror stream contract (`proto/kb/v1/kb.proto`).

pub mod v1 {
    #![allow(clippy::doc_lazy_continuation, clippy::large_enum_variant)]
    include!(concat!(env!("OUT_DIR"), "/kb.v1.rs"));
}

pub use prost::Message;
pub use v1::*;
