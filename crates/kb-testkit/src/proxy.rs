//! A TCP proxy a test controls, between one client and one upstream server (NATS, Postgres,
//! Bolt), to make the network fail in the ways real networks do:
//!
//! - [`TcpProxy::blackhole`]: packets lost. Every byte of the live connections and of new
//!   ones is read and dropped, both ways, and nothing is closed, so a client waiting for an
//!   answer waits until its own timeouts notice. A blackholed connection never recovers, as
//!   a connection whose packets were lost does not; [`TcpProxy::pass`] only serves new ones.
//! - [`TcpProxy::cut`]: every live connection reset (RST), as by a middlebox or a reboot.
//! - [`TcpProxy::refuse`]: nothing listens any more (connection refused), until `pass`.
//!
//! [`TcpProxy::stats`] and [`TcpProxy::wait_dropped`] prove a fault hit: a test waits for
//! dropped bytes instead of sleeping and hoping the client tried.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rustix::net::{shutdown, sockopt, Shutdown};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the proxy does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pass,
    Blackhole,
    Refuse,
}

/// Counters since the proxy started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections open now (forwarding or blackholed).
    pub live: u64,
    /// Bytes passed on, both directions.
    pub forwarded_bytes: u64,
    /// Bytes read and dropped by a blackhole, both directions.
    pub dropped_bytes: u64,
    /// Connections reset by [`TcpProxy::cut`].
    pub cut: u64,
}

/// One proxy: listens on `127.0.0.1:<port>` and forwards to one upstream address. Dropping
/// it resets every connection and closes the port.
pub struct TcpProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
    shutdown: CancellationToken,
}

struct Shared {
    upstream: SocketAddr,
    mode: Mutex<Mode>,
    conns: Mutex<HashMap<u64, Conn>>,
    next_id: AtomicU64,
    accepted: AtomicU64,
    forwarded: AtomicU64,
    dropped: AtomicU64,
    cut: AtomicU64,
    shutdown: CancellationToken,
}

struct Conn {
    /// Blackholed (for good).
    dead: Arc<AtomicBool>,
    cut: CancellationToken,
    task: JoinHandle<()>,
}

enum Command {
    /// Listen again (after `refuse`); answers once the port accepts.
    Listen(Option<oneshot::Sender<std::io::Result<()>>>),
    /// Close the listener; answers once it is closed.
    Close(oneshot::Sender<()>),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl TcpProxy {
    /// Starts a proxy to `upstream` on a free port of 127.0.0.1, in [`Mode::Pass`].
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot bind the proxy")?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let shared = Arc::new(Shared {
            upstream,
            mode: Mutex::new(Mode::Pass),
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            cut: AtomicU64::new(0),
            shutdown: shutdown.clone(),
        });
        let (commands, rx) = mpsc::unbounded_channel();
        tokio::spawn(listen(addr, Some(listener), rx, shared.clone()));
        Ok(Self {
            addr,
            shared,
            commands,
            shutdown,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `url` with its host and port replaced by the proxy's (`nats://`, `postgres://`,
    /// `bolt://`; user, path and query kept).
    pub fn rewrite_url(&self, url: &str) -> String {
        rewrite_url(url, self.addr)
    }

    pub fn mode(&self) -> Mode {
        *lock(&self.shared.mode)
    }

    /// New connections are forwarded (listening again after [`TcpProxy::refuse`]);
    /// blackholed ones stay dead.
    pub async fn pass(&self) -> anyhow::Result<()> {
        *lock(&self.shared.mode) = Mode::Pass;
        let (tx, rx) = oneshot::channel();
        self.command(Command::Listen(Some(tx)))?;
        rx.await
            .context("the proxy stopped")?
            .with_context(|| format!("cannot listen on {} again", self.addr))
    }

    /// Live and new connections: bytes read and dropped both ways, nothing closed. (From
    /// [`Mode::Refuse`] the port accepts again a moment later.)
    pub fn blackhole(&self) {
        let was = std::mem::replace(&mut *lock(&self.shared.mode), Mode::Blackhole);
        for conn in lock(&self.shared.conns).values() {
            conn.dead.store(true, Ordering::SeqCst);
        }
        if was == Mode::Refuse {
            // An error means the proxy is being dropped: nothing to listen for.
            let _ = self.command(Command::Listen(None));
        }
    }

    /// Closes the listening socket: connecting is refused until [`TcpProxy::pass`]. Live
    /// connections are left as they are.
    pub async fn refuse(&self) -> anyhow::Result<()> {
        *lock(&self.shared.mode) = Mode::Refuse;
        let (tx, rx) = oneshot::channel();
        self.command(Command::Close(tx))?;
        rx.await.context("the proxy stopped")
    }

    /// Resets (RST) every live connection and returns how many there were, once they are
    /// closed. The mode does not change.
    pub async fn cut(&self) -> usize {
        let conns: Vec<Conn> = lock(&self.shared.conns).drain().map(|(_, c)| c).collect();
        for conn in &conns {
            conn.cut.cancel();
        }
        let n = conns.len();
        for conn in conns {
            // A task that panicked has closed its sockets too.
            let _ = conn.task.await;
        }
        self.shared.cut.fetch_add(n as u64, Ordering::SeqCst);
        n
    }

    pub fn stats(&self) -> ProxyStats {
        let s = &self.shared;
        ProxyStats {
            accepted: s.accepted.load(Ordering::SeqCst),
            live: lock(&s.conns).len() as u64,
            forwarded_bytes: s.forwarded.load(Ordering::SeqCst),
            dropped_bytes: s.dropped.load(Ordering::SeqCst),
            cut: s.cut.load(Ordering::SeqCst),
        }
    }

    /// Waits until a blackhole has dropped at least `min` bytes: proof that a client tried
    /// to talk through it.
    pub async fn wait_dropped(&self, min: u64, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let dropped = self.shared.dropped.load(Ordering::SeqCst);
            if dropped >= min {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "the proxy to {} dropped {dropped} bytes in {timeout:?}, expected {min}",
                    self.shared.upstream
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn command(&self, c: Command) -> anyhow::Result<()> {
        self.commands
            .send(c)
            .map_err(|_| anyhow::anyhow!("the proxy on {} stopped", self.addr))
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl std::fmt::Debug for TcpProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.shared.upstream)
            .field("mode", &self.mode())
            .finish()
    }
}

/// The server a `nats://`, `postgres://` or `bolt://` URL points at: what a proxy in front
/// of it forwards to.
pub async fn upstream_of(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    tokio::net::lookup_host(host_port)
        .await
        .with_context(|| format!("cannot resolve {host_port}"))?
        .next()
        .with_context(|| format!("{host_port} resolves to no address"))
}

pub(crate) fn rewrite_url(url: &str, addr: SocketAddr) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let userinfo = authority
        .rsplit_once('@')
        .map(|(u, _)| format!("{u}@"))
        .unwrap_or_default();
    format!("{scheme}://{userinfo}{addr}{tail}")
}

/// The listener task: accepts while listening, and obeys commands.
async fn listen(
    addr: SocketAddr,
    mut listener: Option<TcpListener>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    shared: Arc<Shared>,
) {
    loop {
        let accept = async {
            match &listener {
                Some(l) => l.accept().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            command = commands.recv() => match command {
                None => return,
                Some(Command::Close(done)) => {
                    listener = None;
                    let _ = done.send(());
                }
                Some(Command::Listen(done)) => {
                    let result = match listener {
                        Some(_) => Ok(()),
                        None => TcpListener::bind(addr).await.map(|l| listener = Some(l)),
                    };
                    if let Some(done) = done {
                        let _ = done.send(result);
                    }
                }
            },
            accepted = accept => {
                // Accept errors (e.g. too many open files) pass; the next accept may work.
                if let Ok((client, _)) = accepted {
                    open(client, &shared);
                }
            }
        }
    }
}

/// Registers and starts one accepted connection.
fn open(client: TcpStream, shared: &Arc<Shared>) {
    shared.accepted.fetch_add(1, Ordering::SeqCst);
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    let dead = Arc::new(AtomicBool::new(*lock(&shared.mode) == Mode::Blackhole));
    let cut = shared.shutdown.child_token();
    // Registered under the lock before the task can end and remove itself.
    let mut conns = lock(&shared.conns);
    let task = tokio::spawn(serve(client, dead.clone(), cut.clone(), shared.clone(), id));
    conns.insert(id, Conn { dead, cut, task });
}

async fn serve(
    client: TcpStream,
    dead: Arc<AtomicBool>,
    cut: CancellationToken,
    shared: Arc<Shared>,
    id: u64,
) {
    // A connection born in a blackhole never reaches the upstream.
    let upstream = if dead.load(Ordering::SeqCst) {
        None
    } else {
        match tokio::time::timeout(
            UPSTREAM_CONNECT_TIMEOUT,
            TcpStream::connect(shared.upstream),
        )
        .await
        {
            Ok(Ok(s)) => Some(s),
            // The upstream is down: the client sees its connection closed.
            _ => {
                lock(&shared.conns).remove(&id);
                return;
            }
        }
    };
    let _ = client.set_nodelay(true);
    if let Some(s) = &upstream {
        let _ = s.set_nodelay(true);
    }
    let stats = &*shared;
    let both = async {
        match &upstream {
            Some(server) => {
                tokio::join!(
                    pump(&client, Some(server), &dead, stats),
                    pump(server, Some(&client), &dead, stats)
                );
            }
            None => pump(&client, None, &dead, stats).await,
        }
        // A blackholed connection stays open (lost FINs) until cut or dropped.
        if dead.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = both => {}
        _ = cut.cancelled() => {
            // SO_LINGER 0: closing sends RST instead of FIN.
            for s in std::iter::once(&client).chain(upstream.as_ref()) {
                let _ = sockopt::set_socket_linger(s, Some(Duration::ZERO));
            }
        }
    }
    drop(client);
    drop(upstream);
    lock(&shared.conns).remove(&id);
}

/// Copies `from` to `to` until end of file or an error, dropping what arrives while the
/// connection is dead.
async fn pump(from: &TcpStream, to: Option<&TcpStream>, dead: &AtomicBool, stats: &Shared) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match read(from, &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        match to {
            Some(to) if !dead.load(Ordering::SeqCst) => {
                if write_all(to, &buf[..n]).await.is_err() {
                    break;
                }
                stats.forwarded.fetch_add(n as u64, Ordering::SeqCst);
            }
            _ => {
                stats.dropped.fetch_add(n as u64, Ordering::SeqCst);
            }
        }
    }
    // Pass the half-close on, unless blackholed (the FIN is lost too).
    if let (Some(to), false) = (to, dead.load(Ordering::SeqCst)) {
        let _ = shutdown(to, Shutdown::Write);
    }
}

// Reads and writes through `&TcpStream`, so the serving task keeps the sockets (to reset
// them on a cut) while both directions run.
async fn read(s: &TcpStream, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        s.readable().await?;
        match s.try_read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

async fn write_all(s: &TcpStream, mut buf: &[u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        s.writable().await?;
        match s.try_write(buf) {
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_point_at_the_proxy_and_keep_the_rest() {
        let addr: SocketAddr = ([127, 0, 0, 1], 4100).into();
        for (url, want) in [
            ("nats://127.0.0.1:4222", "nats://127.0.0.1:4100"),
            (
                "postgres://postgres@127.0.0.1:5433/kb?sslmode=disable",
                "postgres://postgres@127.0.0.1:4100/kb?sslmode=disable",
            ),
            ("bolt://localhost:7687", "bolt://127.0.0.1:4100"),
            ("nats://tok@h:1#x", "nats://tok@127.0.0.1:4100#x"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(rewrite_url(url, addr), want);
        }
    }
}
