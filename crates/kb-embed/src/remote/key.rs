//! The API key: from the settings value (e.g. `KB_EMBEDDER__API_KEY`) or from a file.

use std::path::Path;

use kb_core::Secret;

use crate::EmbedError;

/// The key to send: `value` when set, else the trimmed content of `file`, else none.
///
/// Errors name the file, never its content.
pub fn resolve_api_key(value: &Secret, file: Option<&Path>) -> Result<Option<Secret>, EmbedError> {
    if !value.is_empty() {
        return Ok(Some(Secret::new(value.expose().trim())));
    }
    let Some(file) = file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(file).map_err(|e| {
        EmbedError::config(format!(
            "cannot read the API key file {}: {e}",
            file.display()
        ))
        .with_source(e)
    })?;
    let key = text.trim();
    if key.is_empty() {
        return Err(EmbedError::config(format!(
            "the API key file {} is empty",
            file.display()
        )));
    }
    Ok(Some(Secret::new(key)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn value_wins_then_file_then_none() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, "  sk-from-file\n").unwrap();
        let from_value = resolve_api_key(&Secret::new("sk-value"), Some(&file)).unwrap();
        assert_eq!(from_value.unwrap().expose(), "sk-value");
        let from_file = resolve_api_key(&Secret::default(), Some(&file)).unwrap();
        assert_eq!(from_file.unwrap().expose(), "sk-from-file");
        assert!(resolve_api_key(&Secret::default(), None).unwrap().is_none());
    }

    #[test]
    fn missing_or_empty_file_is_a_config_error_without_content() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = resolve_api_key(&Secret::default(), Some(&missing)).unwrap_err();
        assert_eq!(err.kind, crate::EmbedErrorKind::Config);
        assert!(err.message().contains("nope"), "{err}");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let err = resolve_api_key(&Secret::default(), Some(&empty)).unwrap_err();
        assert!(err.message().contains("empty"), "{err}");
    }
}
