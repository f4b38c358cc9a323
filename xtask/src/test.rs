//! `cargo xtask test`: install, build, then every check and test; a summary at the end.

use crate::proc::{elapsed_s, root, step};
use crate::{build, setup, Result};
use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};

/// The outcome of one step (or one end-to-end binary).
pub struct Outcome {
    pub name: String,
    pub passed: usize,
    pub failed: usize,
    pub ok: bool,
    /// How long the step took, in seconds.
    pub secs: u64,
}

pub fn run(args: &[String]) -> Result<ExitCode> {
    if !args.is_empty() {
        return Err(format!(
            "unexpected arguments {args:?}; usage: cargo xtask test"
        ));
    }
    setup::toolchain()?;
    setup::test_tools()?;
    let mut outcomes = vec![check("cargo fmt --check", &["fmt", "--all", "--check"])];
    outcomes.push(check(
        "clippy (native)",
        &[
            "clippy",
            "--quiet",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ],
    ));
    // Four wasm32 runs, because features unify within one: the SDK's library
    // is `no_std` with its own panic handler, and any crate in the build that
    // enables std (the worker, the SDK's test dependencies) would clash with it.
    let wasm_clippy = |name: &str, args: &[&str]| {
        let mut all = vec!["clippy", "--quiet"];
        all.extend_from_slice(args);
        all.extend(["--target", "wasm32-unknown-unknown", "--", "-D", "warnings"]);
        check(name, &all)
    };
    outcomes.push(wasm_clippy(
        "clippy (wasm32: shared, worker)",
        &[
            "-p",
            "sluice-shared",
            "-p",
            "sluice-edge-worker",
            "-p",
            "sluice-backend",
            "--all-targets",
            "--all-features",
        ],
    ));
    // The collector links the library without its Durable Object classes
    // (the `objects` feature): what only the backend uses must not warn.
    outcomes.push(wasm_clippy(
        "clippy (wasm32: collector worker alone)",
        &["-p", "sluice-collector", "--all-targets"],
    ));
    outcomes.push(wasm_clippy(
        "clippy (wasm32: SDK and shared, no_std)",
        &[
            "-p",
            "sluice-shared",
            "-p",
            "sluice-sdk",
            "--lib",
            "--no-default-features",
        ],
    ));
    outcomes.push(wasm_clippy(
        "clippy (wasm32: SDK tests)",
        &["-p", "sluice-sdk", "--tests"],
    ));
    outcomes.push(tests(
        "unit tests (native)",
        Command::new("cargo").args([
            "test",
            "--workspace",
            "--all-features",
            "--exclude",
            "sluice-e2e",
        ]),
    ));
    outcomes.push(tests(
        "SDK tests (wasm-bindgen-test, headless Chromium)",
        Command::new("cargo")
            .args([
                "test",
                "-p",
                "sluice-sdk",
                // Only the unit tests: the `no_std` library itself (built for
                // doc tests otherwise) cannot share a build with std.
                "--lib",
                "--target",
                "wasm32-unknown-unknown",
            ])
            .env(
                "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
                crate::proc::cargo_bin("wasm-bindgen-test-runner"),
            )
            .env("CHROMEDRIVER", "/usr/bin/chromedriver")
            .current_dir(root().join("sdk")),
    ));
    outcomes.push(step_outcome(
        "fuzz targets check (shared/fuzz: router, parse_batch; nightly)",
        crate::fuzz::build_targets,
    ));
    let t = elapsed_s();
    let built = build::all();
    outcomes.push(Outcome {
        name: "build SDK, site and worker".into(),
        passed: usize::from(built.is_ok()),
        failed: usize::from(built.is_err()),
        ok: built.is_ok(),
        secs: elapsed_s() - t,
    });
    if let Err(e) = &built {
        eprintln!("xtask: build failed: {e}");
    } else {
        outcomes.push(step_outcome(
            "production deploy holds no local credential (wrangler deploy --dry-run)",
            crate::deploy::check,
        ));
        outcomes.extend(end_to_end());
    }

    eprintln!("\n\x1b[1msummary\x1b[0m");
    for o in &outcomes {
        let mark = if o.ok {
            "\x1b[32mok  \x1b[0m"
        } else {
            "\x1b[31mFAIL\x1b[0m"
        };
        eprintln!(
            "  {mark} {:<52} {} passed, {} failed, {}:{:02}",
            o.name,
            o.passed,
            o.failed,
            o.secs / 60,
            o.secs % 60
        );
    }
    let passed: usize = outcomes.iter().map(|o| o.passed).sum();
    let failed: usize = outcomes.iter().map(|o| o.failed).sum();
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 && outcomes.iter().all(|o| o.ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The end-to-end binaries, two lanes side by side (see `e2e.rs`): one
/// outcome per binary, so the summary shows where the time went.
fn end_to_end() -> Vec<Outcome> {
    let name = "end-to-end (Chromium, workerd, D1, R2, webhooks, ClickHouse)";
    step(&format!("{name}: build"));
    let binaries = match crate::e2e::build("sluice-e2e") {
        Ok(b) => b,
        Err(e) => {
            eprintln!("xtask: {e}");
            return vec![Outcome {
                name: name.into(),
                passed: 0,
                failed: 1,
                ok: false,
                secs: 0,
            }];
        }
    };
    step(&format!("{name}: {} binaries in two lanes", binaries.len()));
    crate::e2e::run(binaries)
}

/// A step run in-process that passes or fails as a whole.
fn step_outcome(name: &str, run: impl FnOnce() -> Result<()>) -> Outcome {
    step(name);
    let t = elapsed_s();
    let result = run();
    if let Err(e) = &result {
        eprintln!("xtask: {name}: {e}");
    }
    Outcome {
        name: name.into(),
        passed: usize::from(result.is_ok()),
        failed: usize::from(result.is_err()),
        ok: result.is_ok(),
        secs: elapsed_s() - t,
    }
}

/// A check that passes or fails as a whole (fmt, clippy).
fn check(name: &str, args: &[&str]) -> Outcome {
    step(name);
    let t = elapsed_s();
    let ok = Command::new("cargo")
        .args(args)
        .current_dir(root())
        .status()
        .is_ok_and(|s| s.success());
    Outcome {
        name: name.into(),
        passed: usize::from(ok),
        failed: usize::from(!ok),
        ok,
        secs: elapsed_s() - t,
    }
}

/// A libtest run: echo its output and add up its `test result:` lines.
fn tests(name: &str, cmd: &mut Command) -> Outcome {
    step(name);
    let t = elapsed_s();
    if cmd.get_current_dir().is_none() {
        cmd.current_dir(root());
    }
    let mut outcome = Outcome {
        name: name.into(),
        passed: 0,
        failed: 0,
        ok: false,
        secs: 0,
    };
    let mut child = match cmd.stdout(Stdio::piped()).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("xtask: cannot start cargo: {e}");
            outcome.failed = 1;
            return outcome;
        }
    };
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out)
            .lines()
            .map_while(std::result::Result::ok)
        {
            println!("{line}");
            if let Some((p, f)) = parse_result_line(&line) {
                outcome.passed += p;
                outcome.failed += f;
            }
        }
    }
    outcome.ok = child.wait().is_ok_and(|s| s.success());
    outcome.secs = elapsed_s() - t;
    if !outcome.ok && outcome.failed == 0 {
        // Failed before or outside any test (e.g. a compile error): count the step.
        outcome.failed = 1;
    }
    outcome
}

/// `test result: ok. 12 passed; 0 failed; ...` → (12, 0).
pub fn parse_result_line(line: &str) -> Option<(usize, usize)> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let count = |label: &str| -> Option<usize> {
        let before = rest.split(label).next()?;
        before
            .rsplit([' ', '.', ';'])
            .find(|s| !s.is_empty())?
            .parse()
            .ok()
    };
    Some((count(" passed")?, count(" failed")?))
}

#[cfg(test)]
mod tests {
    use super::parse_result_line;

    #[test]
    fn reads_libtest_summaries() {
        assert_eq!(
            parse_result_line("test result: ok. 12 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s"),
            Some((12, 0))
        );
        assert_eq!(
            parse_result_line("test result: FAILED. 3 passed; 2 failed; 0 ignored"),
            Some((3, 2))
        );
        assert_eq!(parse_result_line("running 3 tests"), None);
    }
}
