//! `cargo xtask deploy [--dry-run]`: build, prove that what a production
//! deploy ships holds no local-development credential, then `wrangler deploy`.
//!
//! The local credentials (the demo source's write key, the dev admin token)
//! live in `edge-worker/.dev.vars`, which only `wrangler dev` reads, and the
//! demo shop only in `dist/site`, which only `wrangler dev --assets` serves.
//! This check runs `wrangler deploy --dry-run` (it needs no network and no
//! Cloudflare account) and fails if a credential appears in the production
//! configuration, in the bindings wrangler resolved from it, or in an asset
//! it would upload. `cargo xtask test` runs the same check.

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
    step("wrangler deploy");
    proc::run(
        wrangler_env(&mut Command::new(npm_bin("wrangler")))
            .current_dir(root().join("edge-worker"))
            .arg("deploy"),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `wrangler deploy --dry-run` of the production configuration, and the scan
/// of everything it would ship. Needs the worker and the site built.
pub fn check() -> Result<()> {
    step("checking the production deploy (wrangler deploy --dry-run) for local credentials");
    let out_dir = root().join("target/deploy-dry-run");
    let _ = std::fs::remove_dir_all(&out_dir);
    let printed = proc::output(
        wrangler_env(&mut Command::new(npm_bin("wrangler")))
            .current_dir(root().join("edge-worker"))
            .args(["deploy", "--dry-run", "--outdir"])
            .arg(&out_dir),
    )?;
    let missing: Vec<&str> = EXPECTED_VARS
        .iter()
        .copied()
        .filter(|v| !printed.contains(v))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "`wrangler deploy --dry-run` did not list the vars {missing:?}; \
             cannot check what it would deploy. Its output:\n{printed}"
        ));
    }
    let config = root().join("edge-worker/wrangler.toml");
    let mut found = findings(
        "edge-worker/wrangler.toml",
        &std::fs::read_to_string(&config).map_err(|e| format!("cannot read wrangler.toml: {e}"))?,
    );
    found.extend(findings(
        "the bindings of `wrangler deploy --dry-run`",
        &printed,
    ));
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
        eprintln!("xtask: no local credential in the production configuration, its bindings or its assets");
        Ok(())
    } else {
        Err(format!(
            "a production deploy would ship local-development credentials:\n  {}\n\
             Keep them in edge-worker/.dev.vars; put production values in wrangler.toml [vars] \
             or secrets (README, Deploying).",
            found.join("\n  ")
        ))
    }
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
    fn the_committed_production_configuration_is_clean() {
        let config = std::fs::read_to_string(root().join("edge-worker/wrangler.toml")).unwrap();
        assert_eq!(findings("wrangler.toml", &config), Vec::<String>::new());
        let dev = std::fs::read_to_string(root().join("edge-worker/.dev.vars")).unwrap();
        assert_eq!(
            findings(".dev.vars", &dev).len(),
            DEV_CREDENTIALS.len(),
            "the local credentials are in .dev.vars (the key, the token named in a comment, its hash)"
        );
    }
}
