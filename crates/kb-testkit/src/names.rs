//! Unique database names that say which process made them, so leftovers can be cleaned up.

use rand::Rng;

const PREFIX: &str = "t_";

/// `t_<pid>_<random>`: lowercase letters, digits and underscores only, valid unquoted in
/// Postgres and as an ArcadeDB database name.
pub(crate) fn unique_db_name() -> String {
    let suffix: u64 = rand::rng().random();
    format!("{PREFIX}{}_{suffix:016x}", std::process::id())
}

/// True for a name made by [`unique_db_name`] in a process that no longer exists.
pub(crate) fn is_stale(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(PREFIX) else {
        return false;
    };
    let Some((pid, _)) = rest.split_once('_') else {
        return false;
    };
    match pid.parse::<u32>() {
        Ok(pid) => {
            pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_carry_our_pid() {
        let a = unique_db_name();
        let b = unique_db_name();
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("t_{}_", std::process::id())));
        assert!(a
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
    }

    #[test]
    fn only_names_of_dead_processes_are_stale() {
        assert!(!is_stale(&unique_db_name()));
        assert!(!is_stale("kb"));
        assert!(!is_stale("t_notapid_1"));
        // pid 1 is always alive; pids above the kernel maximum (4194304) never are.
        assert!(!is_stale("t_1_abc"));
        assert!(is_stale("t_4194305_abc"));
    }
}
