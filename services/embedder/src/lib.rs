//! kb-mirror embedder service
