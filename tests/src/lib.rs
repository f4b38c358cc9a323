//! Harness for Sluice's end-to-end tests: the real worker on workerd
//! (`wrangler dev` with local D1 / Queues under a temp dir), real headless
//! Chromium through ChromeDriver, and queries against the real storage.
//!
//! Every process is started in its own process group and stopped by that
//! group's id when its handle drops, so nothing outlives a test.

pub mod browser;
pub mod clickhouse;
pub mod cost;
pub mod load;
pub mod size;
pub mod stack;
pub mod stores;
pub mod vendors;
pub mod webhook;

pub use browser::Browser;
pub use clickhouse::ClickHouse;
pub use stack::{duckdb, Stack};
pub use vendors::{Answer, Vendor, VendorStub};
pub use webhook::{Behaviour, Receiver};

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// A free TCP port on 127.0.0.1, below the kernel's ephemeral range
/// (32768–60999): a port the kernel hands out with `bind(0)` is released
/// before the server binds it, and workerd, wrangler and Chromium take
/// ephemeral ports of their own all the time, so one of them could take it
/// in between. Ports here are only ever chosen by this function, spread by
/// process id so that test binaries running at once do not pick the same.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    let start = std::process::id().wrapping_mul(7919) % SPAN;
    for _ in 0..SPAN {
        let port = LOW + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN;
        let port = u16::try_from(port).expect("below 32768");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {LOW} and {}", LOW + SPAN)
}

/// A fresh directory under `target/e2e/` for one test's state.
pub fn temp_dir(prefix: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = root().join("target/e2e").join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// A child process started in its own process group; dropping it stops the whole group.
pub struct Process {
    child: Child,
    what: &'static str,
}

impl Process {
    /// Spawn `cmd` as the leader of a new process group.
    pub fn spawn(what: &'static str, cmd: &mut Command) -> Process {
        use std::os::unix::process::CommandExt;
        let child = cmd
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        Process { child, what }
    }

    /// Panic if the process has already exited (it should be serving).
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited early: {status}", self.what);
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL the whole group now (a crash, not a shutdown) and reap it.
    pub fn kill(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(std::process::Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        // "No such process" when the group is already gone is expected: quiet.
        let kill = |signal: &str| {
            let _ = Command::new("kill")
                .args([signal, "--", &group])
                .stderr(std::process::Stdio::null())
                .status();
        };
        kill("-TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        kill("-KILL");
        let _ = self.child.wait();
    }
}

/// Poll `f` until it returns `Some`, or panic with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Lower-case hex SHA-256 of a text (admin tokens are configured by hash).
pub fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The other TCP ports (IPv4, listening) of the process that listens on
/// `port`, from `/proc` (Linux): for reaching a local runtime's entry
/// beside a port it is known by.
pub fn listening_ports_beside(port: u16) -> Vec<u16> {
    // (port, socket inode) of every IPv4 socket listening.
    let listening: Vec<(u16, String)> = std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let local = cols.get(1)?;
            let state = cols.get(3)?;
            let inode = cols.get(9)?;
            let port = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
            (*state == "0A").then(|| (port, (*inode).to_owned()))
        })
        .collect();
    let Some((_, inode)) = listening.iter().find(|(p, _)| *p == port) else {
        return Vec::new();
    };
    let socket = format!("socket:[{inode}]");
    let sockets_of = |pid: &Path| -> Vec<String> {
        std::fs::read_dir(pid.join("fd"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .map(|l| l.display().to_string())
            .collect()
    };
    let owner = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|p| sockets_of(&p))
        .find(|sockets| sockets.contains(&socket))
        .unwrap_or_default();
    listening
        .into_iter()
        .filter(|(p, inode)| *p != port && owner.contains(&format!("socket:[{inode}]")))
        .map(|(p, _)| p)
        .collect()
}
