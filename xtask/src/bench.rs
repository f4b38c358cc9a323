//! `cargo xtask bench`: install and build what is needed, then run the
//! benchmark binary (release build) that measures everything and prints a
//! report. Nothing is asserted: figures go in the report.

use crate::proc::{self, root, step};
use crate::{build, setup, Result};
use std::process::{Command, ExitCode};

pub fn run(args: &[String]) -> Result<ExitCode> {
    let what = match args {
        [] => "all",
        [w] if [
            "all",
            "sdk",
            "worker",
            "delivery",
            "cost",
            "load",
            "audiences",
        ]
        .contains(&w.as_str()) =>
        {
            w.as_str()
        }
        _ => {
            return Err(
                "usage: cargo xtask bench [all|sdk|worker|delivery|cost|load|audiences]".into(),
            )
        }
    };
    setup::toolchain()?;
    setup::test_tools()?;
    build::all()?;
    step(&format!("benchmarks ({what})"));
    proc::run(Command::new("cargo").current_dir(root()).args([
        "run",
        "--quiet",
        "--release",
        "-p",
        "sluice-e2e",
        "--bin",
        "bench",
        "--",
        what,
    ]))?;
    Ok(ExitCode::SUCCESS)
}
