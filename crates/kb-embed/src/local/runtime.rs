//! Loads the ONNX Runtime shared library once per process.
//!
//! `ort` (feature `load-dynamic`) binds one library path for the whole process and panics
//! when that library cannot be opened, so the path is checked first and the first load is
//! guarded: every failure becomes a `Config` error naming the file and the install command.

use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::INSTALL_HINT;
use crate::EmbedError;

/// The library this process bound, or why binding failed (ort cannot rebind afterwards).
static LOADED: Mutex<Option<Result<PathBuf, String>>> = Mutex::new(None);

/// Makes sure ONNX Runtime is loaded from `lib`; a no-op when it already is.
pub(crate) fn ensure_loaded(lib: &Path) -> Result<(), EmbedError> {
    let lib = check_library_file(lib)?;
    let mut loaded = LOADED.lock().unwrap_or_else(|p| p.into_inner());
    match loaded.as_ref() {
        Some(Ok(bound)) if *bound == lib => return Ok(()),
        Some(Ok(bound)) => {
            return Err(EmbedError::config(format!(
                "ONNX Runtime is already loaded from {} in this process; cannot also load {}",
                bound.display(),
                lib.display()
            )))
        }
        Some(Err(first_failure)) => {
            return Err(EmbedError::config(format!(
                "ONNX Runtime failed to load earlier in this process ({first_failure}); restart after fixing it"
            )))
        }
        None => {}
    }

    let path_text = lib.display().to_string();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        ort::init_from(path_text.clone())
            .with_name("kb-embed")
            .commit()
    }));
    let result = match outcome {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("{e}")),
        Err(panic) => Err(panic_text(&panic)),
    };
    match result {
        Ok(()) => {
            tracing::info!(library = %lib.display(), "ONNX Runtime loaded");
            *loaded = Some(Ok(lib));
            Ok(())
        }
        Err(why) => {
            *loaded = Some(Err(why.clone()));
            Err(EmbedError::config(format!(
                "cannot load ONNX Runtime from {}: {why}; {INSTALL_HINT}",
                lib.display()
            )))
        }
    }
}

/// Rejects a missing or non-ELF file up front: opening it through `ort` would panic.
fn check_library_file(lib: &Path) -> Result<PathBuf, EmbedError> {
    let missing = |detail: String| {
        EmbedError::config(format!(
            "ONNX Runtime library {} {detail}; {INSTALL_HINT}",
            lib.display()
        ))
    };
    let abs = std::fs::canonicalize(lib).map_err(|e| missing(format!("not found ({e})")))?;
    let mut magic = [0u8; 4];
    std::fs::File::open(&abs)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map_err(|e| missing(format!("is unreadable ({e})")))?;
    if cfg!(target_os = "linux") && magic != *b"\x7fELF" {
        return Err(missing("is not a shared library".into()));
    }
    Ok(abs)
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "the loader panicked".to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::EmbedErrorKind;

    #[test]
    fn missing_or_bogus_library_is_a_config_error_naming_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("libonnxruntime.so");
        let err = check_library_file(&missing).unwrap_err();
        assert_eq!(err.kind, EmbedErrorKind::Config);
        assert!(
            err.message().contains(&missing.display().to_string()),
            "{err}"
        );
        assert!(
            err.message().contains("deploy/local/stack install"),
            "{err}"
        );

        std::fs::write(&missing, b"not a library").unwrap();
        let err = check_library_file(&missing).unwrap_err();
        assert!(err.message().contains("not a shared library"), "{err}");
    }
}
