//! A small filesystem of its own for a test (a tmpfs with a size cap), so a server's store can
//! really run out of space, and the space can come back (the cap raised while mounted).
//! Mounting needs root (or CAP_SYS_ADMIN); [`SmallFs::mount`] says why when it cannot.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use tempfile::TempDir;

/// A mounted tmpfs, unmounted (and its mount point deleted) on drop.
#[derive(Debug)]
pub struct SmallFs {
    // Unmounted in `drop` before the mount point goes.
    dir: TempDir,
    mounted: bool,
}

fn run(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl SmallFs {
    /// Mounts a tmpfs of `bytes` on a fresh directory.
    pub fn mount(bytes: u64) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("kb-smallfs-")
            .tempdir()
            .context("cannot create a mount point")?;
        run(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o"])
                .arg(format!("size={bytes}"))
                .arg("tmpfs")
                .arg(dir.path()),
            "mount -t tmpfs (needs root or CAP_SYS_ADMIN)",
        )?;
        Ok(Self { dir, mounted: true })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A directory on the filesystem (created).
    pub fn subdir(&self, name: &str) -> anyhow::Result<PathBuf> {
        let p = self.dir.path().join(name);
        std::fs::create_dir_all(&p).with_context(|| format!("cannot create {}", p.display()))?;
        Ok(p)
    }

    /// Bytes an unprivileged writer can still write.
    pub fn free_bytes(&self) -> anyhow::Result<u64> {
        let st = rustix::fs::statvfs(self.dir.path()).context("statvfs")?;
        Ok(st.f_bavail.saturating_mul(st.f_frsize))
    }

    /// Raises (or lowers) the cap while mounted: space comes back without touching the files.
    pub fn resize(&self, bytes: u64) -> anyhow::Result<()> {
        run(
            Command::new("mount")
                .args(["-o"])
                .arg(format!("remount,size={bytes}"))
                .arg(self.dir.path()),
            "mount -o remount",
        )
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        if self.mounted {
            // Lazy: a server still holding files there must not keep the mount (and the test)
            // alive.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .output();
            self.mounted = false;
        }
    }
}
