//! Installs what is missing on a fresh machine; each step is skipped when already done.

use crate::proc::{self, cargo_bin, npm_bin, root, step};
use crate::Result;
use std::path::Path;
use std::process::Command;

/// worker-build version (must match the `worker` crate's 0.8 line).
const WORKER_BUILD_VERSION: &str = "0.8.7";
const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// The toolchain of the SDK's release build, and only of that: panics that
/// trap without formatting (`-Cpanic=immediate-abort`, which needs core and
/// alloc rebuilt with `-Zbuild-std`) are 3 KB gzipped less Wasm than stable's
/// `panic = "abort"`. Pinned, so the SDK's bytes are reproducible. Tests,
/// clippy and the worker use the stable toolchain of `rust-toolchain.toml`.
pub const SDK_NIGHTLY: &str = "nightly-2026-05-20";

/// Everything `dev` needs: Rust target, wasm-bindgen-cli, worker-build, npm packages.
pub fn toolchain() -> Result<()> {
    wasm_target()?;
    sdk_nightly()?;
    cargo_tool(
        "wasm-bindgen-cli",
        "wasm-bindgen",
        &wasm_bindgen_version()?,
        // --locked fails for 0.2.130 (its lockfile names a yanked crate).
        false,
    )?;
    cargo_tool("worker-build", "worker-build", WORKER_BUILD_VERSION, false)?;
    npm_packages()?;
    crate::patches::local_queue()
}

/// What the tests need on top: Debian's Chromium, ChromeDriver and ClickHouse
/// server, and DuckDB from PyPI.
pub fn test_tools() -> Result<()> {
    let missing: Vec<&str> = [
        ("/usr/bin/chromium", "chromium"),
        ("/usr/bin/chromedriver", "chromium-driver"),
        ("/usr/sbin/clickhouse-server", "clickhouse-server"),
        ("/usr/bin/clickhouse-client", "clickhouse-client"),
    ]
    .iter()
    .filter(|(path, _)| !Path::new(path).exists())
    .map(|(_, package)| *package)
    .collect();
    if !missing.is_empty() {
        step(&format!(
            "installing Debian packages: {}",
            missing.join(" ")
        ));
        apt(&["update", "-q"])?;
        let mut args = vec!["install", "-y", "-q"];
        args.extend(&missing);
        apt(&args)?;
    }
    if proc::probe(Command::new("python3").args(["-c", "import duckdb"])).is_none() {
        step("installing DuckDB (PyPI)");
        proc::run(Command::new("python3").args(["-m", "pip", "install", "--quiet", "duckdb"]))?;
    }
    Ok(())
}

fn apt(args: &[&str]) -> Result<()> {
    let sudo = !is_root() && Path::new("/usr/bin/sudo").exists();
    let mut cmd = if sudo {
        let mut c = Command::new("sudo");
        c.arg("apt-get");
        c
    } else {
        Command::new("apt-get")
    };
    cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
    proc::run(&mut cmd)
}

fn is_root() -> bool {
    proc::probe(Command::new("id").arg("-u")).is_some_and(|s| s.trim() == "0")
}

fn sdk_nightly() -> Result<()> {
    let components = proc::probe(Command::new("rustup").args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        SDK_NIGHTLY,
    ]))
    .unwrap_or_default();
    if components.lines().any(|c| c.starts_with("rust-src")) {
        return Ok(());
    }
    step(&format!(
        "installing {SDK_NIGHTLY} with rust-src (the SDK's release build)"
    ));
    proc::run(Command::new("rustup").args([
        "toolchain",
        "install",
        SDK_NIGHTLY,
        "--profile",
        "minimal",
        "--component",
        "rust-src",
    ]))
}

fn wasm_target() -> Result<()> {
    let installed = proc::probe(Command::new("rustup").args(["target", "list", "--installed"]))
        .unwrap_or_default();
    if installed.lines().any(|l| l.trim() == WASM_TARGET) {
        return Ok(());
    }
    step("adding the wasm32-unknown-unknown target");
    proc::run(Command::new("rustup").args(["target", "add", WASM_TARGET]))
}

/// The `wasm-bindgen` version in Cargo.lock: the CLI must match it exactly.
pub fn wasm_bindgen_version() -> Result<String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock"))
        .map_err(|e| format!("cannot read Cargo.lock: {e}"))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\"" {
            if let Some(v) = lines
                .next()
                .and_then(|l| l.strip_prefix("version = \""))
                .and_then(|l| l.strip_suffix('"'))
            {
                return Ok(v.to_owned());
            }
        }
    }
    Err("Cargo.lock has no wasm-bindgen package".into())
}

fn cargo_tool(package: &str, bin: &str, version: &str, locked: bool) -> Result<()> {
    let current = proc::probe(Command::new(cargo_bin(bin)).arg("--version")).unwrap_or_default();
    if current.split_whitespace().any(|w| w == version) {
        return Ok(());
    }
    step(&format!(
        "installing {package} {version} (one time, a few minutes)"
    ));
    // One target directory for both tools: they share about half their
    // dependencies (serde, syn, ...), built once on a fresh machine.
    let mut cmd = Command::new("cargo");
    cmd.args(["install", package, "--version", version, "--target-dir"]);
    cmd.arg(root().join("target/tools"));
    if locked {
        cmd.arg("--locked");
    }
    proc::run(&mut cmd)
}

fn npm_packages() -> Result<()> {
    let root = root();
    let lock = root.join("package-lock.json");
    let marker = root.join("node_modules/.package-lock.json");
    let fresh = match (std::fs::metadata(&lock), std::fs::metadata(&marker)) {
        (Ok(l), Ok(m)) => match (l.modified(), m.modified()) {
            (Ok(l), Ok(m)) => m >= l && npm_bin("wrangler").exists(),
            _ => false,
        },
        _ => false,
    };
    if fresh {
        return Ok(());
    }
    step("installing npm packages from package-lock.json (wrangler, binaryen, esbuild, terser)");
    proc::run(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
            .current_dir(&root),
    )
}
