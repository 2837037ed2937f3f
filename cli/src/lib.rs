//! The kb command line: ingest, status, verify, search, replay, dead letters
