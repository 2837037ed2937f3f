//! `kb watcher confirm-deletes`: lets a folder watcher carry out the deletions it holds.
//!
//! A scan that would delete more than `watcher.mass_delete_ratio` of the sources under a
//! directory (at least `watcher.mass_delete_min_sources` of them) holds them and raises the
//! alert `watcher.<name>.mass_delete` (see `kb status`). This writes a one-shot confirmation
//! beside the watcher's state; its next scan deletes what is gone then and uses the
//! confirmation up, so a later unmount is held again.

use kb_core::display::clean;
use kb_core::{Component, Settings};
use serde::Serialize;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Action {
    /// Carry out the deletions the watcher holds (an emptied folder that really is empty).
    ConfirmDeletes {
        /// The watcher's name [default: watcher.name].
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Serialize)]
struct Confirmed {
    name: String,
    /// False when nothing was held (and nothing was written).
    confirmed: bool,
    held: u64,
    message: Option<String>,
}

pub async fn run(settings: &Settings, action: Action) -> anyhow::Result<ExitCode> {
    settings.validate(&[Component::Nats])?;
    let (_client, js) = kb_stream::connect(&settings.nats, "kb-cli").await?;
    let topo = kb_stream::topology::ensure(&js).await?;
    match action {
        Action::ConfirmDeletes { name, json } => {
            let name = name.unwrap_or_else(|| settings.watcher.name.clone());
            let out = confirm(&topo, &name).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else if out.confirmed {
                println!(
                    "confirmed: watcher {} deletes the {} held deletions at its next scan",
                    clean(&name),
                    out.held
                );
            } else {
                println!("watcher {} holds no deletions", clean(&name));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn confirm(topo: &kb_stream::Topology, name: &str) -> anyhow::Result<Confirmed> {
    let alert = kb_watcher::hold::confirm(topo, name).await?;
    Ok(Confirmed {
        name: name.to_string(),
        confirmed: alert.is_some(),
        held: alert
            .as_ref()
            .and_then(|a| a.details["held"].as_u64())
            .unwrap_or(0),
        message: alert.map(|a| clean(&a.message).into_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kb_watcher::Scanner;

    #[tokio::test]
    async fn a_confirmation_lets_the_next_scan_delete_what_was_held() -> anyhow::Result<()> {
        let nats = kb_testkit::stack().await?.nats().await?;
        let (_client, js) = kb_stream::connect(&nats.url(), "watcher-cli-test").await?;
        let topo = kb_stream::topology::ensure(&js).await?;
        let dir = tempfile::tempdir()?;
        for i in 0..12 {
            std::fs::write(dir.path().join(format!("f{i:02}.md")), format!("file {i}"))?;
        }
        let publisher = kb_stream::Publisher::new(&topo, 1024);
        let scanner = Scanner::new(
            &topo,
            publisher,
            "inbox",
            "folder:inbox",
            dir.path().to_path_buf(),
            1 << 20,
        );
        assert_eq!(scanner.scan().await?.published.len(), 12);

        // Nothing held: nothing to confirm, nothing written.
        let out = confirm(&topo, "inbox").await?;
        assert!(!out.confirmed);

        for i in 0..12 {
            std::fs::remove_file(dir.path().join(format!("f{i:02}.md")))?;
        }
        let report = scanner.scan().await?;
        assert_eq!(report.held.len(), 12);
        assert!(report.deleted.is_empty());

        let out = confirm(&topo, "inbox").await?;
        assert!(out.confirmed);
        assert_eq!(out.held, 12);
        assert!(out
            .message
            .is_some_and(|m| m.contains("kb watcher confirm-deletes")));
        let report = scanner.scan().await?;
        assert_eq!(report.deleted.len(), 12);
        assert!(report.held.is_empty());
        // Used up, and the alert is gone.
        let out = confirm(&topo, "inbox").await?;
        assert!(!out.confirmed);
        Ok(())
    }
}
