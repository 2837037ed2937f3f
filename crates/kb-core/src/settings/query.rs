//! The `[query]` section: the read side (`kb-query`, `kb search`, `kb mcp`).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::secret::Secret;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuerySettings {
    /// Address of the HTTP API (`KB_QUERY__LISTEN`). Beyond loopback, API keys are required.
    pub listen: String,
    /// Bearer tokens the API accepts (`KB_QUERY__API_KEYS`, comma-separated); never logged.
    #[serde(deserialize_with = "secret_list")]
    pub api_keys: Vec<Secret>,
    /// A file of API keys, one per line (`#` starts a comment), read at start.
    pub api_keys_file: Option<PathBuf>,
    /// Results when a request does not say, and the most it may ask for.
    pub default_k: usize,
    pub max_k: usize,
    /// Longest query accepted, in characters.
    pub max_query_chars: usize,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Budget of one request; past it the answer is 503 with a problem document.
    pub request_timeout_ms: u64,
    /// A store that has not answered within this is taken as away for this query (and the
    /// answer is degraded, not an error). Keep it well under `request_timeout_ms`.
    pub store_timeout_ms: u64,
    /// How often a store taken as away is tried again in the background.
    pub probe_interval_ms: u64,
    /// Candidates each retriever contributes to hybrid fusion.
    pub depth: usize,
    /// Reciprocal-rank fusion: score = Σ weight / (rrf_k + rank).
    pub rrf_k: f64,
    pub weight_vector: f64,
    pub weight_keyword: f64,
    pub weight_graph: f64,
    /// Relations listed in the entity context block of an answer.
    pub max_neighbours: usize,
    /// Query embeddings kept in memory (a repeated question is not embedded again); 0 = off.
    pub embedding_cache: usize,
}

impl Default for QuerySettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            api_keys: Vec::new(),
            api_keys_file: None,
            default_k: 10,
            max_k: 100,
            max_query_chars: 2000,
            max_body_bytes: 64 * 1024,
            request_timeout_ms: 10_000,
            store_timeout_ms: 2_000,
            probe_interval_ms: 1_000,
            depth: 50,
            rrf_k: 60.0,
            weight_vector: 1.0,
            weight_keyword: 1.0,
            weight_graph: 0.25,
            max_neighbours: 20,
            embedding_cache: 1024,
        }
    }
}

impl QuerySettings {
    /// Validation problems of this section.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        match self.listen.parse::<SocketAddr>() {
            Err(_) => p.push(format!(
                "query.listen (KB_QUERY__LISTEN) must be an address like 127.0.0.1:8080, got {:?}",
                self.listen
            )),
            Ok(addr) if !addr.ip().is_loopback() && !self.has_keys() => p.push(format!(
                "query.listen {} is reachable beyond this machine: set query.api_keys \
                 (KB_QUERY__API_KEYS) or query.api_keys_file",
                self.listen
            )),
            Ok(_) => {}
        }
        if let Some(f) = &self.api_keys_file {
            if !f.is_file() {
                p.push(format!("query.api_keys_file {} is not a file", f.display()));
            }
        }
        if self.default_k == 0 || self.max_k == 0 || self.default_k > self.max_k {
            p.push("query.default_k must be between 1 and query.max_k".into());
        }
        if self.max_query_chars == 0 || self.max_body_bytes < 1024 {
            p.push(
                "query.max_query_chars must be at least 1 and query.max_body_bytes at least 1024"
                    .into(),
            );
        }
        // A lookup may wait for one store's deadline, then for the other standing in: the
        // request's budget must cover both and a second, or a degraded answer becomes a 503.
        if self.store_timeout_ms == 0
            || self.request_timeout_ms < self.store_timeout_ms.saturating_mul(2) + 1_000
        {
            p.push(
                "query.store_timeout_ms must be at least 1, and query.request_timeout_ms at \
                 least twice it plus 1000"
                    .into(),
            );
        }
        if self.probe_interval_ms == 0 || self.depth == 0 {
            p.push("query.probe_interval_ms and query.depth must be at least 1".into());
        }
        let weights = [self.weight_vector, self.weight_keyword, self.weight_graph];
        if !(self.rrf_k.is_finite() && self.rrf_k >= 0.0)
            || weights.iter().any(|w| !w.is_finite() || *w < 0.0)
        {
            p.push("query.rrf_k and query.weight_* must be finite and not negative".into());
        }
        p
    }

    /// Whether any API key is configured (inline or by file).
    pub fn has_keys(&self) -> bool {
        self.api_keys.iter().any(|k| !k.is_empty()) || self.api_keys_file.is_some()
    }

    /// Every configured key: inline ones and those of `api_keys_file`.
    pub fn load_keys(&self) -> std::io::Result<Vec<Secret>> {
        let mut keys: Vec<Secret> = self
            .api_keys
            .iter()
            .filter(|k| !k.is_empty())
            .cloned()
            .collect();
        if let Some(f) = &self.api_keys_file {
            let text = std::fs::read_to_string(f)?;
            keys.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(Secret::new),
            );
        }
        Ok(keys)
    }
}

/// A list of secrets from TOML, or one comma-separated string (environment variables).
fn secret_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Secret>, D::Error> {
    Ok(super::string_list(d)?
        .into_iter()
        .map(Secret::new)
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_loopback_needs_no_key() {
        assert!(QuerySettings::default().problems().is_empty());
    }

    #[test]
    fn beyond_loopback_a_key_is_required() {
        let mut q = QuerySettings {
            listen: "0.0.0.0:8080".into(),
            ..QuerySettings::default()
        };
        assert_eq!(q.problems().len(), 1, "{:?}", q.problems());
        q.api_keys = vec![Secret::new("k1")];
        assert!(q.problems().is_empty());
    }

    #[test]
    fn the_request_budget_covers_two_store_deadlines() {
        let mut q = QuerySettings {
            store_timeout_ms: 2_000,
            request_timeout_ms: 4_999,
            ..QuerySettings::default()
        };
        assert_eq!(q.problems().len(), 1, "{:?}", q.problems());
        q.request_timeout_ms = 5_000;
        assert!(q.problems().is_empty());
    }

    #[test]
    fn keys_come_from_settings_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("keys");
        std::fs::write(&f, "# ops\nk2\n\n  k3  \n").unwrap();
        let q = QuerySettings {
            api_keys: vec![Secret::new("k1"), Secret::new("")],
            api_keys_file: Some(f),
            ..QuerySettings::default()
        };
        let keys: Vec<String> = q
            .load_keys()
            .unwrap()
            .iter()
            .map(|k| k.expose().to_owned())
            .collect();
        assert_eq!(keys, ["k1", "k2", "k3"]);
        assert!(!format!("{q:?}").contains("k1"));
    }

    #[test]
    fn bad_values_are_all_reported() {
        let q = QuerySettings {
            listen: "nowhere".into(),
            default_k: 0,
            store_timeout_ms: 20_000,
            weight_graph: -1.0,
            ..QuerySettings::default()
        };
        assert_eq!(q.problems().len(), 4, "{:?}", q.problems());
    }
}
