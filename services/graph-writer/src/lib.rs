//! kb-mirror graph-writer service
