//! Running commands, with their output shown, and clear errors when they fail.

use crate::Result;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The workspace root (parent of `xtask/`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `node_modules/.bin/<name>` in the workspace.
pub fn npm_bin(name: &str) -> PathBuf {
    root().join("node_modules/.bin").join(name)
}

/// `~/.cargo/bin/<name>` (where `cargo install` puts tools).
pub fn cargo_bin(name: &str) -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"));
    home.join("bin").join(name)
}

/// When this xtask started: step headings say how long it has run, so a slow
/// CI run shows where its time went.
static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Seconds since the first call (the first step heading).
pub fn elapsed_s() -> u64 {
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs()
}

/// Print a step heading, with the time since the first one.
pub fn step(what: &str) {
    let s = elapsed_s();
    eprintln!("\x1b[1;36m==>\x1b[0m [{:02}:{:02}] {what}", s / 60, s % 60);
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Run to completion with inherited stdio; error unless it exits 0.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start `{}`: {e}", describe(cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({status})", describe(cmd)))
    }
}

/// Run to completion and return its stdout (stderr inherited); error unless it exits 0.
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start `{}`: {e}", describe(cmd)))?;
    if out.status.success() {
        String::from_utf8(out.stdout).map_err(|_| format!("`{}` printed non-UTF-8", describe(cmd)))
    } else {
        Err(format!("`{}` failed ({})", describe(cmd), out.status))
    }
}

/// Stdout of a command if it runs and exits 0, else `None` (for probing tools).
pub fn probe(cmd: &mut Command) -> Option<String> {
    let out = cmd.stderr(Stdio::null()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Environment every wrangler / workerd invocation gets: no metrics, no update checks, nothing fetched off loopback.
pub fn wrangler_env(cmd: &mut Command) -> &mut Command {
    cmd.env("WRANGLER_SEND_METRICS", "false")
        // Miniflare fetches a `Request.cf` sample from workers.cloudflare.com
        // unless told not to; the dev server reaches nothing off loopback.
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        // The banner is where wrangler asks npm for a newer version.
        .env("WRANGLER_HIDE_BANNER", "true")
        .env("WRANGLER_LOG_SANITIZE", "true")
        .env("NO_UPDATE_NOTIFIER", "1")
        .env("CI", "1")
}
