//! kb-mirror watcher service
