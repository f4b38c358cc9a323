//! `cargo xtask deploy [--dry-run]`: build, prove that what a production
//! deploy of either worker ships holds no local-development credential and
//! that both read the same configuration, then `wrangler deploy` the
//! backend (`backend.toml`) and the collector (`collector.toml`, which
//! binds to the backend), in that order.
//!
//! The local credentials (the demo source's write key, the dev admin token)
//! live in `edge-worker/.dev.vars`, which only `wrangler dev` reads, and the
//! demo shop only in `dist/site`, which only `wrangler dev --assets` serves.
//! This check runs `wrangler deploy --dry-run` (it needs no network and no
//! Cloudflare account) for each worker and fails if a credential appears in
//! a production configuration, in the bindings wrangler resolved from it,
//! or in an asset it would upload. `cargo xtask test` runs the same check.

use crate::proc::{self, npm_bin, root, step, wrangler_env};
use crate::{build, setup, Result};
use std::path::Path;
use std::process::{Command, ExitCode};

/// The public local-development credentials, and what each is.
pub const DEV_CREDENTIALS: &[(&str, &str)] = &[
    ("the demo source's write key", "demo-write-key"),
    ("the dev admin token", "dev-admin-token"),
    (
        "the dev admin token's hash",
        "1734d503f6aa6a047c36d113cbad769f719c93784b469b771c4c3e7c63adbefd",
    ),
];

/// Vars wrangler must list in its dry run: if they are missing, it no longer
/// prints what it would bind, and the check could not see a credential there.
const EXPECTED_VARS: &[&str] = &["SLUICE_SOURCES", "SLUICE_SDK_PATH", "SLUICE_DESTINATIONS"];

pub fn run(args: &[String]) -> Result<ExitCode> {
    let dry_run = match args {
        [] => false,
        [flag] if flag == "--dry-run" => true,
        _ => {
            return Err(format!(
                "unexpected arguments {args:?}; usage: cargo xtask deploy [--dry-run]"
            ))
        }
    };
    setup::toolchain()?;
    build::all()?;
    check()?;
    if dry_run {
        eprintln!("xtask: dry run only; `cargo xtask deploy` deploys");
        return Ok(ExitCode::SUCCESS);
    }
    // The backend first: the collector's service binding and its
    // cross-script Durable Objects name it.
    for name in build::WORKERS.iter().rev() {
        let config = format!("{name}.toml");
        step(&format!("wrangler deploy -c {config}"));
        proc::run(
            wrangler_env(&mut Command::new(npm_bin("wrangler")))
                .current_dir(root().join("edge-worker"))
                .args(["deploy", "-c", &config]),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `wrangler deploy --dry-run` of each production configuration, the scan
/// of everything it would ship, and the check that the two workers read
/// the same [vars]. Needs the workers and the site built.
pub fn check() -> Result<()> {
    step("checking the production deploys (wrangler deploy --dry-run, both workers) for local credentials");
    let mut found = Vec::new();
    let mut texts = Vec::new();
    for name in build::WORKERS {
        let config = format!("{name}.toml");
        let out_dir = root().join("target/deploy-dry-run").join(name);
        let _ = std::fs::remove_dir_all(&out_dir);
        let printed = proc::output(
            wrangler_env(&mut Command::new(npm_bin("wrangler")))
                .current_dir(root().join("edge-worker"))
                .args(["deploy", "--dry-run", "-c", &config, "--outdir"])
                .arg(&out_dir),
        )?;
        let missing: Vec<&str> = EXPECTED_VARS
            .iter()
            .copied()
            .filter(|v| !printed.contains(v))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "`wrangler deploy --dry-run -c {config}` did not list the vars {missing:?}; \
                 cannot check what it would deploy. Its output:\n{printed}"
            ));
        }
        let shown = format!("edge-worker/{config}");
        let text = std::fs::read_to_string(root().join(&shown))
            .map_err(|e| format!("cannot read {shown}: {e}"))?;
        found.extend(findings(&shown, &text));
        found.extend(findings(
            &format!("the bindings of `wrangler deploy --dry-run -c {config}`"),
            &printed,
        ));
        texts.push(text);
    }
    if let [collector, backend] = texts.as_slice() {
        let differ = vars_differ(collector, backend);
        if !differ.is_empty() {
            return Err(format!(
                "collector.toml and backend.toml must give both workers the same configuration; \
                 these [vars] differ: {differ:?}"
            ));
        }
    }
    let assets = build::public_dir();
    let mut files = Vec::new();
    list_files(&assets, &mut files)?;
    if files.is_empty() {
        return Err(format!(
            "{} is empty: run `cargo xtask build`",
            assets.display()
        ));
    }
    for file in files {
        let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let shown = file
            .strip_prefix(root())
            .unwrap_or(&file)
            .display()
            .to_string();
        found.extend(findings(&shown, &String::from_utf8_lossy(&bytes)));
    }
    if found.is_empty() {
        eprintln!("xtask: no local credential in the production configurations, their bindings or the assets");
        Ok(())
    } else {
        Err(format!(
            "a production deploy would ship local-development credentials:\n  {}\n\
             Keep them in edge-worker/.dev.vars; put production values in the configurations' [vars] \
             or secrets (README, Deploying).",
            found.join("\n  ")
        ))
    }
}

/// The `KEY = value` lines of a wrangler TOML's `[vars]` table.
fn vars(toml: &str) -> Vec<(&str, &str)> {
    toml.lines()
        .skip_while(|l| l.trim() != "[vars]")
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect()
}

/// The collector's [vars] the backend does not give the same value.
pub fn vars_differ(collector: &str, backend: &str) -> Vec<String> {
    let backend = vars(backend);
    vars(collector)
        .into_iter()
        .filter(|var| !backend.contains(var))
        .map(|(k, _)| k.to_owned())
        .collect()
}

/// Every local credential `text` (from `what`) contains, as messages.
pub fn findings(what: &str, text: &str) -> Vec<String> {
    DEV_CREDENTIALS
        .iter()
        .filter(|(_, value)| text.contains(value))
        .map(|(name, value)| format!("{what}: {name} (`{value}`)"))
        .collect()
}

fn list_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            list_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_local_credential_is_found() {
        let old_config = r#"[vars]
SLUICE_SOURCES = '[{"name": "demo", "write_key": "demo-write-key", "allowed_origins": []}]'
SLUICE_ADMIN_TOKENS = '[{"name": "dev", "sha256": "1734d503f6aa6a047c36d113cbad769f719c93784b469b771c4c3e7c63adbefd", "scopes": ["admin"]}]'
"#;
        assert_eq!(
            findings("wrangler.toml", old_config),
            [
                "wrangler.toml: the demo source's write key (`demo-write-key`)",
                "wrangler.toml: the dev admin token's hash (`1734d503f6aa6a047c36d113cbad769f719c93784b469b771c4c3e7c63adbefd`)"
            ]
        );
        assert_eq!(
            findings("debugger.html", "placeholder=\"dev: dev-admin-token\""),
            ["debugger.html: the dev admin token (`dev-admin-token`)"]
        );
        assert!(findings("wrangler.toml", "SLUICE_SOURCES = \"[]\"").is_empty());
    }

    #[test]
    fn the_committed_production_configurations_are_clean_and_agree() {
        let read =
            |name: &str| std::fs::read_to_string(root().join("edge-worker").join(name)).unwrap();
        let (collector, backend) = (read("collector.toml"), read("backend.toml"));
        for config in [&collector, &backend] {
            assert_eq!(findings("config", config), Vec::<String>::new());
        }
        assert_eq!(vars_differ(&collector, &backend), Vec::<String>::new());
        assert!(
            vars(&collector).len() >= 4,
            "the collector's [vars] are read: {:?}",
            vars(&collector)
        );
        let dev = std::fs::read_to_string(root().join("edge-worker/.dev.vars")).unwrap();
        assert_eq!(
            findings(".dev.vars", &dev).len(),
            DEV_CREDENTIALS.len(),
            "the local credentials are in .dev.vars (the key, the token named in a comment, its hash)"
        );
    }

    #[test]
    fn a_var_the_two_workers_read_differently_is_found() {
        let collector = "name = \"sluice\"\n[vars]\nSLUICE_SOURCES = \"[1]\"\n# a comment = no\nSLUICE_SDK_PATH = \"/s\"\n\n[[services]]\nbinding = \"BACKEND\"\n";
        let backend = "[vars]\nSLUICE_SOURCES = \"[]\"\nSLUICE_SDK_PATH = \"/s\"\nSLUICE_DEDUP_SHARDS = \"16\"\n[[queues.producers]]\n";
        assert_eq!(vars_differ(collector, backend), ["SLUICE_SOURCES"]);
        let fixed = collector.replace("[1]", "[]");
        assert_eq!(vars_differ(&fixed, backend), Vec::<String>::new());
    }
}
