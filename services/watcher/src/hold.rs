//! Refusing mass deletion: an unmounted network share or an emptied sync folder looks like
//! "every file was deleted", and tombstoning them all would empty both stores. A scan that would
//! delete more than `mass_delete_ratio` of the sources under a directory (the folder itself
//! included) holding at least `mass_delete_min_sources` holds those deletions instead, raises
//! the alert `watcher.<name>.mass_delete` (shown by `kb status`) and waits for a confirmation
//! (`kb watcher confirm-deletes`, consumed by the next scan) or `watcher.allow_mass_delete`.
//! Deleting a few files still deletes them at once; files that only moved (their content is
//! still in the folder) are never held.

use crate::error::WatchError;
use crate::json_kv;
use async_nats::jetstream::kv;
use kb_core::settings::WatcherSettings;
use kb_stream::alerts::{self, Alert};
use kb_stream::progress::now_ms;
use kb_stream::Topology;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

/// The alert kind of held deletions.
pub const ALERT: &str = "mass_delete";

/// When deletions are held (from the `[watcher]` settings).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MassDelete {
    pub min_sources: usize,
    pub ratio: f64,
    /// Never hold.
    pub allow: bool,
}

impl From<&WatcherSettings> for MassDelete {
    fn from(s: &WatcherSettings) -> Self {
        Self {
            min_sources: s.mass_delete_min_sources,
            ratio: s.mass_delete_ratio,
            allow: s.allow_mass_delete,
        }
    }
}

impl Default for MassDelete {
    fn default() -> Self {
        Self::from(&WatcherSettings::default())
    }
}

/// A directory most of whose sources are gone ("" is the watched folder itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emptied {
    pub dir: String,
    pub gone: usize,
    pub sources: usize,
}

/// The directories of `path` ('/' separated, relative): "", then each parent down to its own.
fn dirs_of(path: &str) -> impl Iterator<Item = &str> {
    std::iter::once("").chain(path.match_indices('/').map(move |(i, _)| &path[..i]))
}

/// Which of the `gone` paths must wait, given every path with a live source (`live`, the gone
/// ones included): those under a directory with at least `min_sources` sources of which more
/// than `ratio` are gone. Returns the held paths and the outermost such directories.
pub fn to_hold<'a>(
    live: &[&str],
    gone: &[&'a str],
    policy: &MassDelete,
) -> (Vec<&'a str>, Vec<Emptied>) {
    if policy.allow || gone.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let mut sources: HashMap<&str, usize> = HashMap::new();
    for p in live {
        for d in dirs_of(p) {
            *sources.entry(d).or_default() += 1;
        }
    }
    let mut gone_in: HashMap<&str, usize> = HashMap::new();
    for p in gone {
        for d in dirs_of(p) {
            *gone_in.entry(d).or_default() += 1;
        }
    }
    let emptied = |d: &str| {
        let n = sources.get(d).copied().unwrap_or(0);
        let g = gone_in.get(d).copied().unwrap_or(0);
        n >= policy.min_sources && g as f64 > policy.ratio * n as f64
    };
    let mut held = Vec::new();
    let mut outermost = BTreeSet::new();
    for p in gone {
        if let Some(d) = dirs_of(p).find(|d| emptied(d)) {
            held.push(*p);
            outermost.insert(d);
        }
    }
    let dirs = outermost
        .into_iter()
        .map(|d| Emptied {
            dir: d.to_string(),
            gone: gone_in.get(d).copied().unwrap_or(0),
            sources: sources.get(d).copied().unwrap_or(0),
        })
        .collect();
    (held, dirs)
}

/// What an operator reads in `kb status` about held deletions.
pub(crate) fn alert_message(name: &str, held: usize, dirs: &[Emptied], ratio: f64) -> String {
    let places: Vec<String> = dirs
        .iter()
        .take(5)
        .map(|e| {
            let dir = if e.dir.is_empty() {
                "the watched folder".to_string()
            } else {
                format!("{}/", kb_core::display::clean(&e.dir))
            };
            format!("{dir} ({} of {} gone)", e.gone, e.sources)
        })
        .collect();
    format!(
        "watcher {name}: holding {held} deletions: more than {:.0}% of the sources under {} \
         are gone (an unmounted share or an emptied sync folder?); nothing was deleted. If the \
         files are gone on purpose run `kb watcher confirm-deletes`; if they come back the \
         alert clears",
        ratio * 100.0,
        places.join(", ")
    )
}

/// The one-shot confirmation in `kb_watch`. `=` cannot occur in a watcher name, so this key
/// never falls under a name's `<name>.` state entries.
fn confirm_key(name: &str) -> String {
    format!("confirm-deletes={name}")
}

/// A confirmation given with `kb watcher confirm-deletes`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Confirmation {
    pub confirmed_unix_ms: i64,
    /// Deletions held when it was given.
    pub held: u64,
}

const WHAT: &str = "deletion confirmation";

/// Confirms the deletions watcher `name` holds: its next scan carries them out (and every
/// deletion it finds then). `None`, and nothing written, when nothing is held.
pub async fn confirm(topo: &Topology, name: &str) -> Result<Option<Alert>, WatchError> {
    let key = alerts::key("watcher", name, ALERT);
    let alert = topo
        .alerts
        .get(&key)
        .await
        .map_err(|e| json_kv::transient("cannot read the alerts", e))?;
    let Some(alert) = alert
        .map(|b| serde_json::from_slice::<Alert>(&b))
        .transpose()
        .map_err(|e| json_kv::transient("undecodable alert", e))?
    else {
        return Ok(None);
    };
    let held = alert.details["held"].as_u64().unwrap_or(0);
    let value = json_kv::encode(
        WHAT,
        &Confirmation {
            confirmed_unix_ms: now_ms(),
            held,
        },
    )?;
    topo.watch
        .put(confirm_key(name), value.into())
        .await
        .map_err(|e| json_kv::transient("cannot write the deletion confirmation", e))?;
    Ok(Some(alert))
}

/// The confirmation waiting for watcher `name`, if any.
pub(crate) async fn pending_confirmation(
    kv: &kv::Store,
    name: &str,
) -> Result<Option<json_kv::Entry<Confirmation>>, WatchError> {
    json_kv::get(kv, WHAT, confirm_key(name)).await
}

/// Used up: a confirmation covers one scan's deletions, never a later unmount.
pub(crate) async fn consume(kv: &kv::Store, name: &str) -> Result<(), WatchError> {
    kv.purge(confirm_key(name))
        .await
        .map_err(|e| json_kv::transient("cannot remove the deletion confirmation", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> MassDelete {
        MassDelete {
            min_sources: 10,
            ratio: 0.5,
            allow: false,
        }
    }

    fn files(dir: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{dir}f{i:02}.md")).collect()
    }

    #[test]
    fn an_emptied_folder_is_held_a_few_deletions_are_not() {
        let all = files("", 12);
        let live: Vec<&str> = all.iter().map(String::as_str).collect();
        let (held, dirs) = to_hold(&live, &live, &policy());
        assert_eq!(held.len(), 12);
        assert_eq!(
            dirs,
            [Emptied {
                dir: String::new(),
                gone: 12,
                sources: 12
            }]
        );
        let (held, dirs) = to_hold(&live, &live[..2], &policy());
        assert!(held.is_empty() && dirs.is_empty());
        // Exactly half is not more than half.
        assert!(to_hold(&live, &live[..6], &policy()).0.is_empty());
        assert_eq!(to_hold(&live, &live[..7], &policy()).0.len(), 7);
        // Allowed: never held.
        let allow = MassDelete {
            allow: true,
            ..policy()
        };
        assert!(to_hold(&live, &live, &allow).0.is_empty());
    }

    #[test]
    fn an_emptied_subdirectory_is_held_while_the_rest_deletes() {
        let mut all = files("share/", 12);
        all.extend(files("notes/", 30));
        let live: Vec<&str> = all.iter().map(String::as_str).collect();
        // The whole share and one note gone: the share is held, the note goes.
        let mut gone: Vec<&str> = live[..12].to_vec();
        gone.push(live[12]);
        let (held, dirs) = to_hold(&live, &gone, &policy());
        assert_eq!(held, &live[..12]);
        assert_eq!(dirs.len(), 1);
        assert_eq!(dirs[0].dir, "share");
        // A small directory emptied is a few deletions.
        let small = files("tiny/", 3);
        let mut all2 = all.clone();
        all2.extend(small.iter().cloned());
        let live2: Vec<&str> = all2.iter().map(String::as_str).collect();
        let gone2: Vec<&str> = small.iter().map(String::as_str).collect();
        assert!(to_hold(&live2, &gone2, &policy()).0.is_empty());
    }

    #[test]
    fn the_message_names_the_place_and_the_way_out() {
        let m = alert_message(
            "inbox",
            12,
            &[Emptied {
                dir: "sh\x1bare".into(),
                gone: 12,
                sources: 12,
            }],
            0.5,
        );
        assert!(m.contains("holding 12 deletions"), "{m}");
        assert!(m.contains("sh\\u{1b}are/ (12 of 12 gone)"), "{m}");
        assert!(m.contains("kb watcher confirm-deletes"), "{m}");
    }
}
