//! `cargo xtask dev | test | build | bench | deploy | fuzz`: the developer commands.
//!
//! Each installs what is missing on a fresh machine (wasm32 target, pinned
//! wasm-bindgen-cli, worker-build, npm packages from the lockfile, Debian's
//! chromium and chromium-driver), builds what is stale, then does its job.

mod bench;
mod build;
mod deploy;
mod dev;
mod e2e;
mod fuzz;
mod names;
mod patches;
mod proc;
mod setup;
mod test;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  dev  [--port N]   install what is missing, build, run the worker on workerd (default port 8787)
  test              install what is missing, build, run every check and test
  build [sdk]       install what is missing, build the SDK, the site and the worker (sdk: only the SDK)
  bench [what]      measure SDK size and speed, collector and delivery throughput, cost per million events,
                    sustained load, audiences (all|sdk|worker|delivery|cost|load|audiences)
  deploy [--dry-run] build, check that no local credential would ship (wrangler deploy --dry-run), deploy
  fuzz [seconds]    fuzz the whole router natively, longer than `test` does (default 600 s)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("dev") => dev::run(&args[1..]),
        Some("test") => test::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("deploy") => deploy::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("build") => setup::toolchain()
            .and_then(|()| match args.get(1).map(String::as_str) {
                // Only the SDK (`dist/site/sluice/v1/`, `dist/npm/`): for size work.
                Some("sdk") => build::sdk(),
                _ => build::all(),
            })
            .map(|()| ExitCode::SUCCESS),
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Errors are plain messages: xtask prints them and exits non-zero.
pub type Result<T> = std::result::Result<T, String>;
