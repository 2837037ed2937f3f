//! Failpoints: named places in the code where a test makes a fault happen on purpose (an error,
//! a panic, a process death, a hang, a pause in a window between two steps), so a test can
//! prove it hit the window instead of hoping a sleep did.
//!
//! Always compiled in and inert unless armed: a site costs one relaxed atomic load.
//!
//! ```text
//! KB_FAILPOINTS="watcher.after_publish=1*pause@notes.md;writer.apply=panic(boom)@<sid>"
//! <name>=[<count>*]<action>[(<arg>)][@<key substring>]     entries separated by ';'
//! actions: off | err[(msg)] | panic[(msg)] | abort | exit[(code)] | sleep(ms) | spin | pause | skip
//! ```
//!
//! - `count*` limits the rule to its first `count` hits; `@key` to sites whose key (a relative
//!   path, a source id) contains the substring. A name may have several rules: the first that
//!   matches a hit takes it.
//! - `off` only counts hits; `skip` tells the site to leave out its next step (a lost ack);
//!   `spin` burns CPU forever without checking any deadline; `pause` waits for [`release`].
//! - Across processes: with `KB_FAILPOINTS_DIR` set, every hit appends a line
//!   `<pid> <key>` to `<dir>/<name>.hit`, and a pause also ends once `<dir>/<name>.release`
//!   exists ([`hit_path`], [`release_path`]).
//! - `KB_FAILPOINTS` is read once per process. It has no `__`, so the settings' environment
//!   layer never sees it.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The environment variable holding the spec.
pub const ENV: &str = "KB_FAILPOINTS";
/// The environment variable naming the directory of hit and release files.
pub const DIR_ENV: &str = "KB_FAILPOINTS_DIR";

/// How often a pause looks for its release (in process, and the release file).
const POLL: Duration = Duration::from_millis(20);

/// What a rule does when it takes a hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing; the hit is counted.
    Off,
    /// The site fails with this message.
    Err(String),
    Panic(String),
    /// `std::process::abort()`: the process dies as from SIGABRT.
    Abort,
    /// `std::process::exit(code)`.
    Exit(i32),
    Sleep(Duration),
    /// Busy-loops forever, checking nothing: runaway CPU.
    Spin,
    /// Waits until [`release`] (or the release file).
    Pause,
    /// The site leaves out its next step.
    Skip,
}

/// What the site does after the failpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Err(String),
    Skip,
}

/// One parsed rule: `[count*]action[(arg)][@key]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Hits left; `None` = every hit.
    pub remaining: Option<u32>,
    pub action: Action,
    /// Only sites whose key contains this.
    pub key: Option<String>,
}

/// A spec that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError(String);

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad failpoint spec: {}", self.0)
    }
}

impl std::error::Error for SpecError {}

fn bad(msg: impl Into<String>) -> SpecError {
    SpecError(msg.into())
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Off => f.write_str("off"),
            Action::Err(m) => write!(f, "err({m})"),
            Action::Panic(m) => write!(f, "panic({m})"),
            Action::Abort => f.write_str("abort"),
            Action::Exit(code) => write!(f, "exit({code})"),
            Action::Sleep(d) => write!(f, "sleep({})", d.as_millis()),
            Action::Spin => f.write_str("spin"),
            Action::Pause => f.write_str("pause"),
            Action::Skip => f.write_str("skip"),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = self.remaining {
            write!(f, "{n}*")?;
        }
        write!(f, "{}", self.action)?;
        if let Some(key) = &self.key {
            write!(f, "@{key}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Rule {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, SpecError> {
        let text = text.trim();
        let mut rest = text;
        let mut remaining = None;
        if let Some((count, after)) = rest.split_once('*') {
            if !count.is_empty() && count.bytes().all(|b| b.is_ascii_digit()) {
                remaining = Some(
                    count
                        .parse::<u32>()
                        .map_err(|_| bad(format!("count {count:?} is too large")))?,
                );
                rest = after;
            }
        }
        let word_end = rest.find(['(', '@']).unwrap_or(rest.len());
        let (word, mut rest) = rest.split_at(word_end);
        let mut arg = None;
        if let Some(inner) = rest.strip_prefix('(') {
            // The argument ends at the first ')' that is followed by nothing or by '@key'.
            let close = inner
                .match_indices(')')
                .map(|(i, _)| i)
                .find(|&i| {
                    let after = &inner[i + 1..];
                    after.is_empty() || after.starts_with('@')
                })
                .ok_or_else(|| bad(format!("{text:?}: '(' without its ')'")))?;
            arg = Some(&inner[..close]);
            rest = &inner[close + 1..];
        }
        let key = match rest.strip_prefix('@') {
            Some("") => return Err(bad(format!("{text:?}: '@' without a key"))),
            Some(key) => Some(key.to_owned()),
            None if rest.is_empty() => None,
            None => return Err(bad(format!("{text:?}: unexpected {rest:?}"))),
        };
        let no_arg = |action: Action| match arg {
            None => Ok(action),
            Some(_) => Err(bad(format!("{text:?}: {word} takes no argument"))),
        };
        let action = match word {
            "off" => no_arg(Action::Off)?,
            "abort" => no_arg(Action::Abort)?,
            "spin" => no_arg(Action::Spin)?,
            "pause" => no_arg(Action::Pause)?,
            "skip" => no_arg(Action::Skip)?,
            "err" => Action::Err(arg.unwrap_or("failpoint").to_owned()),
            "panic" => Action::Panic(arg.unwrap_or("failpoint").to_owned()),
            "exit" => Action::Exit(match arg {
                None => 1,
                Some(a) => a
                    .trim()
                    .parse()
                    .map_err(|_| bad(format!("{text:?}: exit code {a:?}")))?,
            }),
            "sleep" => {
                let ms = arg
                    .and_then(|a| a.trim().parse::<u64>().ok())
                    .ok_or_else(|| bad(format!("{text:?}: sleep takes milliseconds")))?;
                Action::Sleep(Duration::from_millis(ms))
            }
            other => return Err(bad(format!("{text:?}: unknown action {other:?}"))),
        };
        // ';' separates entries, so it could not come back through spec_string().
        if arg.is_some_and(|a| a.contains(';')) || key.as_deref().is_some_and(|k| k.contains(';')) {
            return Err(bad(format!(
                "{text:?}: ';' cannot appear in an argument or key"
            )));
        }
        Ok(Rule {
            remaining,
            action,
            key,
        })
    }
}

/// Parses a whole spec, `name=rule;name=rule…` (a name may repeat), in order.
pub fn parse_spec(spec: &str) -> Result<Vec<(String, Rule)>, SpecError> {
    spec.split(';')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (name, rule) = entry
                .split_once('=')
                .ok_or_else(|| bad(format!("{entry:?} is not <name>=<action>")))?;
            let name = name.trim();
            check_name(name)?;
            Ok((name.to_owned(), rule.parse()?))
        })
        .collect()
}

fn check_name(name: &str) -> Result<(), SpecError> {
    if name.is_empty() || name.contains(['=', ';', '/']) || name.contains(char::is_whitespace) {
        return Err(bad(format!("{name:?} is not a failpoint name")));
    }
    Ok(())
}

const UNINIT: u8 = 0;
const OFF: u8 = 1;
const ON: u8 = 2;

/// Whether any rule exists; the only thing a site reads when nothing is armed.
static STATE: AtomicU8 = AtomicU8::new(UNINIT);

#[derive(Default)]
struct Pauses {
    /// Tickets handed to pauses so far, and up to which one they are released.
    issued: u64,
    released: u64,
}

struct Registry {
    rules: HashMap<String, Vec<Rule>>,
    hits: HashMap<String, u32>,
    pauses: HashMap<String, Pauses>,
    dir: Option<PathBuf>,
    env_error: Option<SpecError>,
}

impl Registry {
    fn from_env() -> Self {
        let mut reg = Registry {
            rules: HashMap::new(),
            hits: HashMap::new(),
            pauses: HashMap::new(),
            dir: std::env::var_os(DIR_ENV)
                .filter(|d| !d.is_empty())
                .map(PathBuf::from),
            env_error: None,
        };
        if let Ok(spec) = std::env::var(ENV) {
            match parse_spec(&spec) {
                Ok(entries) => {
                    for (name, rule) in entries {
                        reg.rules.entry(name).or_default().push(rule);
                    }
                }
                Err(e) => reg.env_error = Some(e),
            }
        }
        reg.publish_state();
        reg
    }

    fn publish_state(&self) {
        let state = if self.rules.is_empty() { OFF } else { ON };
        STATE.store(state, Ordering::Relaxed);
    }
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(|| Mutex::new(Registry::from_env()));

fn registry() -> MutexGuard<'static, Registry> {
    // A panic action never runs under the lock, but a test thread may die holding it.
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads `KB_FAILPOINTS` (once per process): `Ok(true)` when failpoints are armed, an error
/// when the spec does not parse (its rules are then ignored). Services call it at start.
pub fn init() -> Result<bool, SpecError> {
    let reg = registry();
    match &reg.env_error {
        Some(e) => Err(e.clone()),
        None => Ok(!reg.rules.is_empty()),
    }
}

/// True when any failpoint is armed. The fast path of every site.
#[inline]
pub fn armed() -> bool {
    match STATE.load(Ordering::Relaxed) {
        OFF => false,
        ON => true,
        _ => init().unwrap_or(false),
    }
}

/// Replaces the rules of `name` with `spec`: one or more rules separated by ';'
/// (`"1*pause@a.md"`, `"abort@x;spin@y"`). Resets its hit count.
pub fn set(name: &str, spec: &str) -> Result<(), SpecError> {
    check_name(name)?;
    let rules = spec
        .split(';')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::parse)
        .collect::<Result<Vec<Rule>, _>>()?;
    if rules.is_empty() {
        return Err(bad(format!("{name}: no rule in {spec:?}")));
    }
    let mut reg = registry();
    reg.rules.insert(name.to_owned(), rules);
    reg.hits.remove(name);
    reg.publish_state();
    Ok(())
}

/// Removes every rule and hit count, releases every pause, and disarms.
pub fn clear_all() {
    let mut reg = registry();
    reg.rules.clear();
    reg.hits.clear();
    for p in reg.pauses.values_mut() {
        p.released = p.issued;
    }
    reg.publish_state();
}

/// Lets every site paused at `name` so far go on (a pause that starts later waits again).
pub fn release(name: &str) {
    let mut reg = registry();
    if let Some(p) = reg.pauses.get_mut(name) {
        p.released = p.issued;
    }
}

/// How many times a rule of `name` took a hit in this process since it was set.
pub fn hits(name: &str) -> u32 {
    registry().hits.get(name).copied().unwrap_or(0)
}

/// Waits until `name` has taken at least one hit: proof that a site sits in its window.
pub async fn wait_hit(name: &str, timeout: Duration) -> bool {
    wait_hits(name, 1, timeout).await
}

/// Waits until `name` has taken at least `min` hits.
pub async fn wait_hits(name: &str, min: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if hits(name) >= min {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The armed rules as a spec (remaining counts included), to hand to a child process in
/// `KB_FAILPOINTS`. Empty when nothing is armed.
pub fn spec_string() -> String {
    let reg = registry();
    let mut names: Vec<&String> = reg.rules.keys().collect();
    names.sort();
    names
        .into_iter()
        .flat_map(|name| reg.rules[name].iter().map(move |r| format!("{name}={r}")))
        .collect::<Vec<_>>()
        .join(";")
}

/// `<dir>/<name>.hit`: one line `<pid> <key>` per hit.
pub fn hit_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.hit"))
}

/// `<dir>/<name>.release`: once it exists, pauses at `name` in any process go on.
pub fn release_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.release"))
}

/// Hits recorded in `<dir>/<name>.hit` by every process.
pub fn file_hits(dir: &Path, name: &str) -> u32 {
    std::fs::read_to_string(hit_path(dir, name))
        .map(|text| text.lines().count() as u32)
        .unwrap_or(0)
}

/// A rule that took a hit.
struct Fired {
    action: Action,
    ticket: u64,
    dir: Option<PathBuf>,
}

/// Finds the rule taking this hit and books it (count, hit, pause ticket, hit file).
fn fire(name: &str, key: &str) -> Option<Fired> {
    let mut reg = registry();
    let rule = reg
        .rules
        .get_mut(name)?
        .iter_mut()
        .find(|r| r.remaining != Some(0) && r.key.as_deref().is_none_or(|k| key.contains(k)))?;
    if let Some(n) = rule.remaining.as_mut() {
        *n -= 1;
    }
    let action = rule.action.clone();
    *reg.hits.entry(name.to_owned()).or_default() += 1;
    // The ticket is taken with the hit, so wait_hit() then release() cannot miss this pause.
    let ticket = match action {
        Action::Pause => {
            let p = reg.pauses.entry(name.to_owned()).or_default();
            p.issued += 1;
            p.issued
        }
        _ => 0,
    };
    let dir = reg.dir.clone();
    drop(reg);
    tracing::warn!(failpoint = name, key, action = %action, "failpoint hit");
    if let Some(dir) = &dir {
        record_hit_file(dir, name, key);
    }
    Some(Fired {
        action,
        ticket,
        dir,
    })
}

fn record_hit_file(dir: &Path, name: &str, key: &str) {
    use std::io::Write;
    let path = hit_path(dir, name);
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| writeln!(f, "{} {key}", std::process::id()));
    if let Err(e) = written {
        tracing::error!(path = %path.display(), error = %e, "cannot record a failpoint hit");
    }
}

fn is_released(name: &str, fired: &Fired) -> bool {
    let released = registry()
        .pauses
        .get(name)
        .is_none_or(|p| p.released >= fired.ticket);
    released
        || fired
            .dir
            .as_deref()
            .is_some_and(|dir| release_path(dir, name).exists())
}

/// The actions that finish at once; `None` for those that wait (sleep, pause).
fn act(action: &Action) -> Option<Flow> {
    match action {
        Action::Off => Some(Flow::Continue),
        Action::Err(msg) => Some(Flow::Err(msg.clone())),
        Action::Skip => Some(Flow::Skip),
        Action::Panic(msg) => panic!("failpoint: {msg}"),
        Action::Abort => std::process::abort(),
        Action::Exit(code) => std::process::exit(*code),
        Action::Spin => loop {
            std::hint::spin_loop();
        },
        Action::Sleep(_) | Action::Pause => None,
    }
}

/// Evaluates failpoint `name` at an async site whose key is `key`. Use [`failpoint!`](crate::failpoint!).
pub async fn eval(name: &str, key: &str) -> Flow {
    let Some(fired) = fire(name, key) else {
        return Flow::Continue;
    };
    if let Some(flow) = act(&fired.action) {
        return flow;
    }
    match fired.action {
        Action::Sleep(d) => tokio::time::sleep(d).await,
        _ => {
            while !is_released(name, &fired) {
                tokio::time::sleep(POLL).await;
            }
        }
    }
    Flow::Continue
}

/// Evaluates failpoint `name` at a blocking site (threads sleep instead of tasks). Use
/// [`failpoint_blocking!`](crate::failpoint_blocking!).
pub fn eval_blocking(name: &str, key: &str) -> Flow {
    let Some(fired) = fire(name, key) else {
        return Flow::Continue;
    };
    if let Some(flow) = act(&fired.action) {
        return flow;
    }
    match fired.action {
        Action::Sleep(d) => std::thread::sleep(d),
        _ => {
            while !is_released(name, &fired) {
                std::thread::sleep(POLL);
            }
        }
    }
    Flow::Continue
}

/// A failpoint at an async site: `failpoint!("writer.apply", source_id)` evaluates to a
/// [`Flow`](crate::failpoint::Flow). One relaxed atomic load when nothing is armed.
#[macro_export]
macro_rules! failpoint {
    ($name:literal) => {
        $crate::failpoint!($name, "")
    };
    ($name:literal, $key:expr) => {
        if $crate::failpoint::armed() {
            $crate::failpoint::eval($name, $key).await
        } else {
            $crate::failpoint::Flow::Continue
        }
    };
}

/// [`failpoint!`] for blocking code (e.g. the parse worker).
#[macro_export]
macro_rules! failpoint_blocking {
    ($name:literal) => {
        $crate::failpoint_blocking!($name, "")
    };
    ($name:literal, $key:expr) => {
        if $crate::failpoint::armed() {
            $crate::failpoint::eval_blocking($name, $key)
        } else {
            $crate::failpoint::Flow::Continue
        }
    };
}

#[cfg(test)]
// Each test has its own runtime on its own thread: holding the turn across an await blocks
// only the next test that wants it.
#[allow(clippy::unwrap_used, clippy::await_holding_lock)]
mod tests {
    use super::*;
    use std::process::Command;

    // The registry is per process; tests that arm failpoints take turns.
    static LOCK: Mutex<()> = Mutex::new(());

    fn guard() -> MutexGuard<'static, ()> {
        let g = LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        clear_all();
        g
    }

    #[test]
    fn rules_parse_and_print_back() {
        let cases = [
            ("off", None, Action::Off, None),
            ("1*pause@notes.md", Some(1), Action::Pause, Some("notes.md")),
            ("err", None, Action::Err("failpoint".into()), None),
            ("err(conflict)", None, Action::Err("conflict".into()), None),
            (
                "4*panic(boom (really))@ab12",
                Some(4),
                Action::Panic("boom (really)".into()),
                Some("ab12"),
            ),
            ("abort@p-abort", None, Action::Abort, Some("p-abort")),
            ("exit(3)", None, Action::Exit(3), None),
            ("exit", None, Action::Exit(1), None),
            (
                "sleep(600000)",
                None,
                Action::Sleep(Duration::from_secs(600)),
                None,
            ),
            ("spin@slow.txt", None, Action::Spin, Some("slow.txt")),
            ("5*skip", Some(5), Action::Skip, None),
        ];
        for (text, remaining, action, key) in cases {
            let rule: Rule = text.parse().unwrap();
            let want = Rule {
                remaining,
                action,
                key: key.map(str::to_owned),
            };
            assert_eq!(rule, want, "{text}");
            assert_eq!(rule.to_string().parse::<Rule>().unwrap(), want, "{text}");
        }
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        for text in [
            "",
            "explode",
            "sleep",
            "sleep(soon)",
            "pause(1)",
            "err(unclosed",
            "pause@",
            "exit(x)",
            "pause junk",
            "err(a;b)",
        ] {
            assert!(text.parse::<Rule>().is_err(), "{text:?} should not parse");
        }
        let entries = parse_spec(" a.b=1*pause@x ; c=err(no) ;a.b=skip;").unwrap();
        let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a.b", "c", "a.b"]);
        assert!(parse_spec("novalue").is_err());
        assert!(parse_spec("=pause").is_err());
        assert!(parse_spec("a b=pause").is_err());
        let _g = guard();
        assert!(set("x", "").is_err());
        assert!(set("x=y", "off").is_err());
        assert!(!armed(), "a refused set arms nothing");
    }

    #[tokio::test]
    async fn counts_keys_and_flows() {
        let _g = guard();
        assert!(!armed());
        assert_eq!(crate::failpoint!("t.site", "a.md"), Flow::Continue);
        assert_eq!(hits("t.site"), 0, "nothing is counted while disarmed");

        set("t.site", "2*err(nope)@a.md;skip@b.md;off").unwrap();
        assert!(armed());
        assert_eq!(
            crate::failpoint!("t.site", "dir/a.md"),
            Flow::Err("nope".into())
        );
        assert_eq!(crate::failpoint!("t.site", "b.md"), Flow::Skip);
        assert_eq!(
            crate::failpoint!("t.site", "a.md"),
            Flow::Err("nope".into())
        );
        // The err rule is used up; the catch-all `off` takes the hit.
        assert_eq!(crate::failpoint!("t.site", "a.md"), Flow::Continue);
        assert_eq!(crate::failpoint!("t.other"), Flow::Continue);
        assert_eq!(hits("t.site"), 4);
        assert_eq!(hits("t.other"), 0);
        assert_eq!(
            spec_string(),
            "t.site=0*err(nope)@a.md;t.site=skip@b.md;t.site=off"
        );
        assert_eq!(
            crate::failpoint_blocking!("t.site", "b.md"),
            Flow::Skip,
            "the blocking form shares the rules"
        );

        set("t.site", "1*off").unwrap();
        assert_eq!(hits("t.site"), 0, "set resets the count");
        clear_all();
        assert!(!armed());
        assert_eq!(spec_string(), "");
    }

    #[tokio::test]
    async fn sleep_waits_and_panic_panics() {
        let _g = guard();
        set("t.sleep", "sleep(150)").unwrap();
        let start = Instant::now();
        assert_eq!(crate::failpoint!("t.sleep"), Flow::Continue);
        assert!(start.elapsed() >= Duration::from_millis(150));
        let start = Instant::now();
        assert_eq!(crate::failpoint_blocking!("t.sleep"), Flow::Continue);
        assert!(start.elapsed() >= Duration::from_millis(150));

        set("t.panic", "panic(boom)").unwrap();
        let caught = tokio::spawn(async { crate::failpoint!("t.panic", "k") }).await;
        let payload = caught.unwrap_err().into_panic();
        assert_eq!(
            payload.downcast_ref::<String>().map(String::as_str),
            Some("failpoint: boom")
        );
    }

    #[tokio::test]
    async fn pause_holds_until_released() {
        let _g = guard();
        set("t.pause", "1*pause").unwrap();
        let task = tokio::spawn(async { crate::failpoint!("t.pause", "a") });
        assert!(wait_hit("t.pause", Duration::from_secs(5)).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!task.is_finished(), "a pause holds");
        release("t.pause");
        let flow = tokio::time::timeout(Duration::from_secs(5), task).await;
        assert_eq!(flow.unwrap().unwrap(), Flow::Continue);
        // The count was 1: the next pass goes straight through and is not a hit.
        assert_eq!(crate::failpoint!("t.pause", "a"), Flow::Continue);
        assert_eq!(hits("t.pause"), 1);

        // clear_all releases a blocking pause too.
        set("t.pause", "pause").unwrap();
        let thread = std::thread::spawn(|| crate::failpoint_blocking!("t.pause", "b"));
        assert!(wait_hit("t.pause", Duration::from_secs(5)).await);
        assert!(!thread.is_finished());
        clear_all();
        assert_eq!(thread.join().unwrap(), Flow::Continue);
    }

    #[test]
    fn spin_burns_cpu_until_killed() {
        let mut proc = child(&[(ENV, "child.first=spin")]).spawn().unwrap();
        // A loaded machine gives the spinner less than a core: wait for 0.2 s of CPU.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut burnt = 0.0;
        while burnt < 0.2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            burnt = cpu_secs(proc.id());
        }
        assert!(proc.try_wait().unwrap().is_none(), "spinning, not exited");
        proc.kill().unwrap();
        proc.wait().unwrap();
        assert!(burnt >= 0.2, "the spinner used only {burnt:.3} s of CPU");
    }

    /// CPU seconds (user + system) process `pid` used so far.
    fn cpu_secs(pid: u32) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        // utime and stime are fields 14 and 15, the 12th and 13th after the comm field.
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        (ticks(11) + ticks(12)) as f64 / 100.0
    }

    /// Runs `child_process_entry` in a fresh copy of this test binary with `env`.
    fn child(env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "failpoint::tests::child_process_entry",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("KB_FAILPOINT_TEST_CHILD", "1")
        .env_remove(ENV)
        .env_remove(DIR_ENV)
        .stdout(std::process::Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Not a test of its own: the body of the child process of the tests below.
    #[test]
    fn child_process_entry() {
        if std::env::var_os("KB_FAILPOINT_TEST_CHILD").is_none() {
            return;
        }
        init().unwrap();
        crate::failpoint_blocking!("child.first", "doc.md");
        crate::failpoint_blocking!("child.second", "doc.md");
    }

    #[test]
    fn abort_and_exit_end_a_process_armed_from_the_environment() {
        use std::os::unix::process::ExitStatusExt;
        let status = child(&[(ENV, "child.second=exit(7)")]).status().unwrap();
        assert_eq!(status.code(), Some(7));
        let status = child(&[(ENV, "child.first=abort@doc")]).status().unwrap();
        assert_eq!(status.signal(), Some(6), "SIGABRT, got {status:?}");
        // A key that does not match leaves the process alone.
        let status = child(&[(ENV, "child.first=abort@other")]).status().unwrap();
        assert!(status.success(), "{status:?}");
    }

    #[test]
    fn a_pause_in_another_process_is_seen_and_released_through_files() {
        let dir = tempfile::tempdir().unwrap();
        let dir_text = dir.path().to_str().unwrap();
        let mut proc = child(&[
            (ENV, "child.first=1*pause@doc.md;child.second=exit(9)"),
            (DIR_ENV, dir_text),
        ])
        .spawn()
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while file_hits(dir.path(), "child.first") == 0 {
            assert!(
                Instant::now() < deadline,
                "the child never reached the pause"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let line = std::fs::read_to_string(hit_path(dir.path(), "child.first")).unwrap();
        assert_eq!(line, format!("{} doc.md\n", proc.id()));
        std::thread::sleep(Duration::from_millis(100));
        assert!(proc.try_wait().unwrap().is_none(), "the child is paused");
        std::fs::write(release_path(dir.path(), "child.first"), "").unwrap();
        assert_eq!(proc.wait().unwrap().code(), Some(9));
        assert_eq!(file_hits(dir.path(), "child.second"), 1);
    }

    #[test]
    fn a_bad_environment_spec_is_an_error_at_start() {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "failpoint::tests::child_reports_init",
                "--exact",
                "--nocapture",
            ])
            .env("KB_FAILPOINT_TEST_CHILD", "1")
            .env(ENV, "child.first=explode")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("init: Err"), "{stdout}");
        assert!(stdout.contains("unknown action"), "{stdout}");
    }

    /// Not a test of its own: prints what init() says in a child process.
    #[test]
    fn child_reports_init() {
        if std::env::var_os("KB_FAILPOINT_TEST_CHILD").is_none() {
            return;
        }
        println!("init: {:?}", init().map_err(|e| e.to_string()));
        assert!(!armed(), "a bad spec arms nothing");
    }
}
