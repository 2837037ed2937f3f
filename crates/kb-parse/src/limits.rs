//! The memory and time budget of one parse, derived from [`ParseOptions`] and handed to every
//! reader: how many bytes compressed parts may inflate to, how many pages a PDF may have, and
//! a deadline that long loops check (so a runaway parse stops on its own, not only when the
//! caller gives up on it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{ParseError, ParseErrorKind};
use crate::options::ParseOptions;

/// Compressed data that inflates more than this many times its size, past
/// [`MIN_BOMB_BYTES`], is treated as a bomb: real documents compress text 5-20x, XML up to
/// ~100x.
pub const MAX_INFLATE_RATIO: u64 = 250;
/// Below this many inflated bytes the ratio is not checked (tiny parts compress very well).
pub const MIN_BOMB_BYTES: u64 = 4 * 1024 * 1024;

/// Budget of one parse (one document; a reader may hand it to a helper thread).
#[derive(Debug)]
pub struct Limits {
    pub max_inflated_bytes: u64,
    pub max_pages: usize,
    deadline: Option<Instant>,
    timeout: Duration,
    inflated: AtomicU64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new(&ParseOptions::default())
    }
}

impl Limits {
    /// Starts the clock now.
    pub fn new(opts: &ParseOptions) -> Self {
        let timeout = Duration::from_millis(opts.timeout_ms);
        Limits {
            max_inflated_bytes: opts.max_inflated_bytes as u64,
            max_pages: opts.max_pages,
            deadline: (opts.timeout_ms > 0).then(|| Instant::now() + timeout),
            timeout,
            inflated: AtomicU64::new(0),
        }
    }

    /// `Timeout` once the deadline has passed.
    pub fn check_time(&self) -> Result<(), ParseError> {
        match self.deadline {
            Some(d) if Instant::now() >= d => Err(ParseError::new(
                ParseErrorKind::Timeout,
                format!("parsing took longer than {:?}", self.timeout),
            )),
            _ => Ok(()),
        }
    }

    /// Bytes still allowed to be inflated by this parse.
    pub fn inflate_room(&self) -> u64 {
        self.max_inflated_bytes
            .saturating_sub(self.inflated.load(Ordering::Relaxed))
    }

    /// Records `bytes` more inflated bytes; `DecompressionBomb` past the budget.
    pub fn add_inflated(&self, what: &str, bytes: u64) -> Result<(), ParseError> {
        let total = self
            .inflated
            .fetch_add(bytes, Ordering::Relaxed)
            .saturating_add(bytes);
        if total > self.max_inflated_bytes {
            return Err(bomb(format!(
                "{what} inflates past the limit of {} bytes",
                self.max_inflated_bytes
            )));
        }
        Ok(())
    }

    /// `DecompressionBomb` when `inflated` bytes came out of `compressed` at an implausible ratio.
    pub fn check_ratio(
        &self,
        what: &str,
        compressed: u64,
        inflated: u64,
    ) -> Result<(), ParseError> {
        if inflated > MIN_BOMB_BYTES && inflated / compressed.max(1) > MAX_INFLATE_RATIO {
            return Err(bomb(format!(
                "{what} inflates {compressed} bytes to {inflated} (more than {MAX_INFLATE_RATIO}x)"
            )));
        }
        Ok(())
    }
}

pub(crate) fn bomb(message: String) -> ParseError {
    ParseError::new(ParseErrorKind::DecompressionBomb, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_and_deadline() {
        let opts = ParseOptions {
            max_inflated_bytes: 100,
            timeout_ms: 0,
            ..ParseOptions::default()
        };
        let l = Limits::new(&opts);
        assert!(l.check_time().is_ok());
        l.add_inflated("a", 60).unwrap();
        assert_eq!(l.inflate_room(), 40);
        let e = l.add_inflated("part b", 41).unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::DecompressionBomb);
        assert!(e.message.contains("part b"), "{e}");
        assert!(l.check_ratio("x", 1, MIN_BOMB_BYTES).is_ok());
        let big = MIN_BOMB_BYTES * 2;
        assert!(l.check_ratio("x", big / 10, big).is_ok());
        assert_eq!(
            l.check_ratio("x", 1000, big).unwrap_err().kind,
            ParseErrorKind::DecompressionBomb
        );
        let quick = Limits::new(&ParseOptions {
            timeout_ms: 1,
            ..ParseOptions::default()
        });
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(
            quick.check_time().unwrap_err().kind,
            ParseErrorKind::Timeout
        );
    }
}
