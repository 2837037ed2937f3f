//! kb-mirror pg-writer service
