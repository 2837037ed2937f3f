//! The retrieval benchmark's parts, shared with the other read-side benchmarks
//! (`kb-bench-query`): the corpus loader ([`corpus`]: the transcripts and their
//! `NAME.queries.json`), the pipeline runner ([`pipeline`]: release services + `kb ingest` into
//! the `bench` stack instance), fresh stores for the benchmarks that start the services
//! themselves ([`fresh_stores`]), the recall rule ([`recall`]: [`recall::holds_part_of`],
//! [`recall::first_hit`], [`recall::MIN_OVERLAP`]) and the parser throughput ([`parse_speed`]).

pub mod arcadedb;
pub mod corpus;
pub mod fresh_stores;
pub mod parse_speed;
pub mod pipeline;
pub mod recall;

use std::path::PathBuf;

/// `KB_BENCH_CORPUS`, else the shared corpus beside the repository.
pub fn corpus_dir() -> PathBuf {
    std::env::var_os("KB_BENCH_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"))
}
