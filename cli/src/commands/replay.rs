//! `kb replay --store postgres|graph [--from-start | --since TIME]`: rebuilds or backfills one
//! store from the mirror stream, into whatever database the usual settings name, creating the
//! schema there if needed. Reads with an ephemeral consumer (the writers' positions do not
//! move) and applies through the writers' own code, so the result is what the live writer
//! would hold. An empty Postgres store is filled in bulk mode (HNSW index built at the end).

use crate::stores;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kb_core::{Component, Settings};
use kb_store::MirrorStore;
use kb_stream::Publisher;
use kb_writer::replay::{ReplayEvent, ReplayFrom, ReplayOptions, ReplayReport};
use serde::Serialize;
use std::process::ExitCode;
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreName {
    Postgres,
    Graph,
}

impl StoreName {
    fn as_str(self) -> &'static str {
        match self {
            StoreName::Postgres => "postgres",
            StoreName::Graph => "graph",
        }
    }
}

pub struct Args {
    pub store: StoreName,
    pub since: Option<String>,
    pub no_bulk: bool,
    pub concurrency: Option<usize>,
    pub json: bool,
}

#[derive(Serialize)]
struct SkippedOut {
    sequence: u64,
    source_id: String,
    error_kind: String,
    reason: String,
}

#[derive(Serialize)]
struct Output {
    store: &'static str,
    /// "start" or the RFC 3339 time replayed from.
    from: String,
    messages: u64,
    written: u64,
    deleted: u64,
    failed: u64,
    stale: u64,
    skipped: Vec<SkippedOut>,
    bulk: bool,
    load_seconds: f64,
    index_seconds: f64,
    docs_per_second: f64,
}

/// `TIME` is RFC 3339 (`2025-06-01T12:00:00Z`) or an age: a number and `s`, `m`, `h` or `d`.
pub fn parse_since(text: &str, now: OffsetDateTime) -> anyhow::Result<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t);
    }
    let bad = || {
        anyhow::anyhow!(
            "--since {text:?}: expected an RFC 3339 time (2025-06-01T12:00:00Z) or an age like 90m, 6h, 2d"
        )
    };
    let split = text.len().checked_sub(1).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(bad()),
    };
    now.checked_sub(time::Duration::seconds(
        i64::try_from(secs).map_err(|_| bad())?,
    ))
    .ok_or_else(bad)
}

fn progress_bar(json: bool) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(
        Some(0),
        if json {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        },
    );
    let style = ProgressStyle::with_template(
        "{prefix} [{bar:40}] {pos}/{len} docs  {per_sec}  ETA {eta}  {msg}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    settings.validate(&[Component::Nats])?;
    let from = match &args.since {
        Some(t) => ReplayFrom::Since(parse_since(t, OffsetDateTime::now_utc())?),
        None => ReplayFrom::Start,
    };
    let concurrency = args.concurrency.unwrap_or(match args.store {
        StoreName::Postgres => 4,
        // Concurrent MERGEs of shared entities conflict on some graph servers.
        StoreName::Graph => 1,
    });
    let options = ReplayOptions {
        from,
        concurrency,
        bulk: !args.no_bulk,
        ..Default::default()
    };
    let (_client, js) = kb_stream::connect(&settings.nats, "kb-replay").await?;
    let topo = kb_stream::topology::ensure(&js).await?;
    let publisher = Publisher::new(&topo, settings.nats.inline_max_bytes);
    let pb = progress_bar(args.json);
    pb.set_prefix(format!("replay {}", args.store.as_str()));
    let pool = u32::try_from(concurrency)
        .unwrap_or(u32::MAX)
        .saturating_add(1);
    let report = match args.store {
        StoreName::Postgres => {
            let store = stores::postgres_with(settings, pool).await?;
            run_replay(&publisher, &store, &options, &pb).await?
        }
        StoreName::Graph => {
            let store = stores::graph_with(settings, pool as usize).await?;
            run_replay(&publisher, &store, &options, &pb).await?
        }
    };
    pb.finish_and_clear();
    let out = output(args.store, from, report);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_text(&out);
    }
    Ok(if out.skipped.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn run_replay<S: MirrorStore>(
    publisher: &Publisher,
    store: &S,
    options: &ReplayOptions,
    pb: &ProgressBar,
) -> anyhow::Result<ReplayReport> {
    let report = kb_writer::replay(publisher, store, options, |event| match event {
        ReplayEvent::Started { total, bulk } => {
            pb.set_length(total);
            if bulk {
                pb.set_message("bulk mode (empty store)");
            }
        }
        ReplayEvent::Applied { done, total } => {
            pb.set_length(total);
            pb.set_position(done);
        }
        ReplayEvent::Finishing => {
            pb.set_message("building the vector index…");
            pb.enable_steady_tick(Duration::from_millis(200));
        }
    })
    .await?;
    Ok(report)
}

fn output(store: StoreName, from: ReplayFrom, r: ReplayReport) -> Output {
    let load = r.load.as_secs_f64();
    let index = r.finish.as_secs_f64();
    let total = load + index;
    Output {
        store: store.as_str(),
        from: match from {
            ReplayFrom::Start => "start".to_string(),
            ReplayFrom::Since(t) => t.format(&Rfc3339).unwrap_or_else(|_| t.to_string()),
        },
        messages: r.messages,
        written: r.written,
        deleted: r.deleted,
        failed: r.marked_failed,
        stale: r.stale,
        skipped: r
            .skipped
            .into_iter()
            .map(|s| SkippedOut {
                sequence: s.sequence,
                source_id: s.source_id,
                error_kind: s.error_kind,
                reason: s.reason,
            })
            .collect(),
        bulk: r.bulk,
        load_seconds: load,
        index_seconds: index,
        docs_per_second: if total > 0.0 {
            r.messages as f64 / total
        } else {
            0.0
        },
    }
}

fn print_text(o: &Output) {
    println!(
        "Replayed {} message(s) into {} from {}{}: {} written, {} deleted, {} failed, {} already current",
        o.messages,
        o.store,
        o.from,
        if o.bulk { " (bulk mode)" } else { "" },
        o.written,
        o.deleted,
        o.failed,
        o.stale
    );
    println!(
        "  {:.1} s loading{}, {:.1} docs/s",
        o.load_seconds,
        if o.bulk {
            format!(", {:.1} s building the vector index", o.index_seconds)
        } else {
            String::new()
        },
        o.docs_per_second
    );
    if !o.skipped.is_empty() {
        println!(
            "Not applied ({}), see `kb dead-letters list`:",
            o.skipped.len()
        );
        for s in &o.skipped {
            println!(
                "  #{} {} {}: {}",
                s.sequence, s.source_id, s.error_kind, s.reason
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_rfc3339_and_ages() {
        let now = OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap();
        let t = parse_since("2025-06-01T12:00:00Z", now).unwrap();
        assert_eq!(t.unix_timestamp(), 1_748_779_200);
        assert_eq!(
            parse_since("90m", now).unwrap().unix_timestamp(),
            1_750_000_000 - 5400
        );
        assert_eq!(
            parse_since("2d", now).unwrap().unix_timestamp(),
            1_750_000_000 - 172_800
        );
        for bad in ["", "h", "5w", "yesterday", "-3h"] {
            assert!(parse_since(bad, now).is_err(), "{bad}");
        }
    }
}
