//! The Postgres + pgvector mirror: migrations, per-document upserts, deletes, search, verification
