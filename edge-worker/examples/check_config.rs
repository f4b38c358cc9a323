//! The configuration in this process's environment, read as the backend
//! reads its vars at run time (`config::vars::load`, every destination's
//! settings checked): prints what it holds, or the error with its code and
//! exits 1. `cargo xtask deploy` (and `cargo xtask test`, through the same
//! check) runs it with the [vars] of backend.toml, so a value the workers
//! would refuse is refused before it ships.
//!
//! `cargo run -q -p sluice-edge-worker --example check_config`

use sluice_edge_worker::config::vars;
use std::process::ExitCode;

fn main() -> ExitCode {
    let var = |name: &str| std::env::var(name).ok();
    match vars::load(&var, vars::full_destinations) {
        Ok((config, destinations)) => {
            println!(
                "configuration ok: {} source(s), {} destination(s), {} admin token(s)",
                config.sources.len(),
                destinations.len(),
                config.admin_tokens.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("configuration error: {e}");
            ExitCode::FAILURE
        }
    }
}
