//! `cargo xtask dev`: install, build, and run the whole stack locally on
//! workerd: both workers in one `wrangler dev` (the collector, first, gets
//! the port; queues, the service binding and the cross-script Durable
//! Objects join them there).

use crate::proc::{self, npm_bin, root, step, wrangler_env};
use crate::{build, setup, Result};
use std::process::{Command, ExitCode};

const DEFAULT_PORT: u16 = 8787;

pub fn run(args: &[String]) -> Result<ExitCode> {
    let port = parse_port(args)?;
    setup::toolchain()?;
    build::all()?;
    let state = root().join(".wrangler/state");
    migrate(&state)?;
    step(&format!(
        "starting the collector and backend workers on workerd at http://127.0.0.1:{port}"
    ));
    print_guide(port, &state);
    let status = wrangler_env(&mut Command::new(npm_bin("wrangler")))
        .current_dir(root().join("edge-worker"))
        .args(["dev", "-c", "collector.toml", "-c", "backend.toml"])
        .args(["--ip", "127.0.0.1", "--port", &port.to_string()])
        // The demo shop too (production serves only dist/public); `.dev.vars`
        // beside the configurations adds the demo source and the local admin token.
        .args(["--assets", "../dist/site"])
        .arg("--persist-to")
        .arg(&state)
        .args(["--show-interactive-dev-session=false", "--log-level=info"])
        .status()
        .map_err(|e| format!("cannot start wrangler: {e}"))?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn parse_port(args: &[String]) -> Result<u16> {
    match args {
        [] => Ok(DEFAULT_PORT),
        [flag, n] if flag == "--port" => n.parse().map_err(|_| format!("bad port `{n}`")),
        _ => Err(format!(
            "unexpected arguments {args:?}; usage: cargo xtask dev [--port N]"
        )),
    }
}

/// Apply the D1 migrations to the local database under `state`.
pub fn migrate(state: &std::path::Path) -> Result<()> {
    step("applying D1 migrations (local)");
    proc::run(
        wrangler_env(&mut Command::new(npm_bin("wrangler")))
            .current_dir(root().join("edge-worker"))
            .args([
                "d1",
                "migrations",
                "apply",
                "DB",
                "--local",
                "-c",
                "backend.toml",
            ])
            .arg("--persist-to")
            .arg(state),
    )
}

fn print_guide(port: u16, state: &std::path::Path) {
    let base = format!("http://127.0.0.1:{port}");
    eprintln!(
        "
  demo site         {base}/
  ingestion         POST {base}/v1/batch   (write key: demo-write-key, HTTP Basic or body `writeKey`)
  debugger          {base}/debugger        (token: dev-admin-token)
  local credentials edge-worker/.dev.vars  (refused on any host but localhost; never deployed)
  SDK files         {base}/sluice/v1/sluice.js
  data lands in     D1 `events` table, persisted under {state}
  query it          (cd edge-worker && npx wrangler d1 execute DB --local --persist-to {state} \\
                       --command \"SELECT type, event, anonymous_id, properties FROM events ORDER BY received_at DESC LIMIT 10\")
",
        state = state.display()
    );
}
