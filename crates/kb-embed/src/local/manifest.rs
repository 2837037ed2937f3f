//! `kb-model.json`: what the installer says about the model it built.

use std::path::Path;

use serde::Deserialize;

use super::INSTALL_HINT;
use crate::EmbedError;

pub(crate) const MANIFEST_FILE: &str = "kb-model.json";

/// Pooling strategies the local model supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Pooling {
    /// Average of the token vectors under the attention mask (sentence-transformers' default).
    Mean,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Manifest {
    pub name: String,
    pub dimensions: usize,
    pub max_tokens: usize,
    pub pooling: Pooling,
    pub normalize: bool,
}

impl Manifest {
    pub fn read(model_dir: &Path) -> Result<Self, EmbedError> {
        let path = model_dir.join(MANIFEST_FILE);
        let bytes = std::fs::read(&path).map_err(|e| {
            EmbedError::config(format!(
                "cannot read local model manifest {}: {e}; {INSTALL_HINT}",
                path.display()
            ))
            .with_source(e)
        })?;
        let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
            EmbedError::config(format!(
                "invalid local model manifest {}: {e}; {INSTALL_HINT}",
                path.display()
            ))
            .with_source(e)
        })?;
        if manifest.name.is_empty() || manifest.dimensions == 0 || manifest.max_tokens < 2 {
            return Err(EmbedError::config(format!(
                "local model manifest {} needs a name, dimensions > 0 and max_tokens >= 2",
                path.display()
            )));
        }
        Ok(manifest)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::EmbedErrorKind;

    fn write(dir: &Path, body: &str) {
        std::fs::write(dir.join(MANIFEST_FILE), body).unwrap();
    }

    #[test]
    fn reads_the_installer_manifest() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        write(
            dir,
            r#"{"name":"all-minilm-l6-v2","dimensions":384,"max_tokens":256,"pooling":"mean","normalize":true}"#,
        );
        let m = Manifest::read(dir).unwrap();
        assert_eq!(
            (m.name.as_str(), m.dimensions, m.max_tokens),
            ("all-minilm-l6-v2", 384, 256)
        );
        assert_eq!(m.pooling, Pooling::Mean);
        assert!(m.normalize);
    }

    #[test]
    fn unknown_pooling_and_missing_file_are_config_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        write(
            dir,
            r#"{"name":"x","dimensions":4,"max_tokens":8,"pooling":"cls","normalize":true}"#,
        );
        assert_eq!(
            Manifest::read(dir).unwrap_err().kind,
            EmbedErrorKind::Config
        );

        let missing = dir.join("nope");
        let err = Manifest::read(&missing).unwrap_err();
        assert_eq!(err.kind, EmbedErrorKind::Config);
        assert!(
            err.message().contains("deploy/local/stack install"),
            "{err}"
        );
    }
}
