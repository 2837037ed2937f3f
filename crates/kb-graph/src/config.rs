//! Where the graph lives and how to log in.

use std::fmt;

/// Connection settings for the Bolt server (Neo4j 5, or ArcadeDB's Bolt plugin locally).
#[derive(Clone)]
pub struct GraphConfig {
    /// `bolt://host:7687` or `neo4j+s://…` (TLS).
    pub uri: String,
    pub user: String,
    pub password: String,
    /// Database name; `None` uses the server's default (`neo4j`).
    pub database: Option<String>,
    /// Upper bound of pooled Bolt connections.
    pub max_connections: usize,
}

impl GraphConfig {
    /// Settings with the default database and a pool of 8 connections.
    pub fn new(
        uri: impl Into<String>,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        Self {
            uri: uri.into(),
            user: user.into(),
            password: password.into(),
            database: None,
            max_connections: 8,
        }
    }
}

// Hand-written so the password never reaches a log line.
impl fmt::Debug for GraphConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphConfig")
            .field("uri", &self.uri)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("database", &self.database)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let cfg = GraphConfig::new("bolt://localhost:7687", "neo4j", "hunter2");
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("hunter2"));
        assert!(shown.contains("bolt://localhost:7687"));
    }
}
