//! `cargo xtask fuzz [seconds]`: fuzz the whole router for longer than
//! `cargo xtask test` does.
//!
//! Always: the native router fuzz test (`edge-worker/tests/router_fuzz.rs`),
//! release build, for the given time with a fresh seed. Then, if `cargo fuzz`
//! is installed (`cargo install cargo-fuzz`), the libFuzzer targets `router` and
//! `parse_batch` (`shared/fuzz/`, nightly) for the same time each, seeded
//! from the committed corpus in `shared/fuzz/corpus/<target>/`; what they
//! learn goes to `target/fuzz-corpus/<target>/`, crashes to `shared/fuzz/artifacts/`.

use crate::proc::{self, probe, root, step};
use crate::{setup, Result};
use std::process::{Command, ExitCode};

const DEFAULT_SECONDS: u64 = 600;
/// The libFuzzer targets in `shared/fuzz/`.
pub const TARGETS: &[&str] = &["router", "parse_batch"];

pub fn run(args: &[String]) -> Result<ExitCode> {
    let seconds = match args {
        [] => DEFAULT_SECONDS,
        [n] => n.parse().map_err(|_| {
            format!("bad number of seconds `{n}`; usage: cargo xtask fuzz [seconds]")
        })?,
        _ => return Err("usage: cargo xtask fuzz [seconds]".into()),
    };
    setup::toolchain()?;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_secs());
    step(&format!(
        "router fuzz test, release build, {seconds} s, seed {seed:#x}"
    ));
    proc::run(
        Command::new("cargo")
            .current_dir(root())
            .args([
                "test",
                "--release",
                "-p",
                "sluice-edge-worker",
                "--test",
                "router_fuzz",
                "--",
                "--nocapture",
            ])
            .env("SLUICE_FUZZ_SECONDS", seconds.to_string())
            .env("SLUICE_FUZZ_SEED", seed.to_string()),
    )?;
    let nightly = crate::setup::SDK_NIGHTLY;
    if probe(Command::new("cargo").args([&format!("+{nightly}"), "fuzz", "--version"])).is_none() {
        eprintln!(
            "xtask: `cargo fuzz` is not installed (`cargo install cargo-fuzz`): skipped the libFuzzer runs"
        );
        return Ok(ExitCode::SUCCESS);
    }
    for target in TARGETS {
        step(&format!("libFuzzer: {target}, {seconds} s"));
        let learned = root().join("target/fuzz-corpus").join(target);
        std::fs::create_dir_all(&learned)
            .map_err(|e| format!("cannot create {}: {e}", learned.display()))?;
        proc::run(
            Command::new("cargo")
                .current_dir(root().join("shared"))
                .args([&format!("+{nightly}"), "fuzz", "run", target])
                .arg(&learned)
                .arg(root().join("shared/fuzz/corpus").join(target))
                .args(["--", &format!("-max_total_time={seconds}")]),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `cargo xtask test`'s step: type-check the libFuzzer targets (they are
/// outside the workspace: libfuzzer-sys), so a change that breaks them fails
/// the tests. `check`, not `build`: a cold CI run would otherwise compile and
/// link the worker a second time, with nightly; `cargo xtask fuzz` builds them.
pub fn build_targets() -> Result<()> {
    // The workspace's versions, so the targets build what the tests test.
    let lock = root().join("shared/fuzz/Cargo.lock");
    if !lock.exists() {
        std::fs::copy(root().join("Cargo.lock"), &lock)
            .map_err(|e| format!("cannot copy Cargo.lock to {}: {e}", lock.display()))?;
    }
    proc::run(
        Command::new("cargo")
            .current_dir(root())
            .env("RUSTUP_TOOLCHAIN", crate::setup::SDK_NIGHTLY)
            .args([
                "check",
                "--quiet",
                "--manifest-path",
                "shared/fuzz/Cargo.toml",
                "--bins",
            ]),
    )
}
