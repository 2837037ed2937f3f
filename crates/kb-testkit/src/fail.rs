//! Test isolation for in-process failpoints ([`kb_core::failpoint`]).

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// Whether a test holds the failpoints, and a way to wait for its turn. Not a `MutexGuard`
/// kept in the guard: that would be held across every `.await` of an async test.
static TAKEN: Mutex<bool> = Mutex::new(false);
static FREED: Condvar = Condvar::new();

fn taken() -> MutexGuard<'static, bool> {
    TAKEN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Held by a test that arms failpoints in its own process: the registry is per process, so
/// tests of one binary running in parallel take turns (`new` blocks the test's thread until
/// the previous holder drops its guard). Clears every failpoint, releasing paused sites,
/// when taken and when dropped, also when the test fails.
#[must_use = "the failpoints are cleared when the guard drops"]
pub struct FailGuard(());

impl FailGuard {
    pub fn new() -> Self {
        let mut busy = taken();
        while *busy {
            busy = FREED.wait(busy).unwrap_or_else(PoisonError::into_inner);
        }
        *busy = true;
        drop(busy);
        kb_core::failpoint::clear_all();
        Self(())
    }
}

impl Default for FailGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for FailGuard {
    fn drop(&mut self) {
        kb_core::failpoint::clear_all();
        *taken() = false;
        FREED.notify_one();
    }
}

impl std::fmt::Debug for FailGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FailGuard")
    }
}
