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
        check_config(backend)?;
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

/// Read backend.toml's [vars] as the backend reads them at run time
/// (`edge-worker/examples/check_config.rs`: sources, tokens, audiences, D1's
/// hot window, every destination's settings), so that a value the workers
/// would refuse is refused here, before it ships. A var set in this
/// process's environment is checked instead of the file's: how to check a
/// value kept as a secret (`wrangler secret put`) before deploying.
fn check_config(backend_toml: &str) -> Result<()> {
    step("checking the production configuration (backend.toml's [vars], read as the workers read them)");
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root()).args([
        "run",
        "-q",
        "-p",
        "sluice-edge-worker",
        "--example",
        "check_config",
    ]);
    for (name, value) in vars(backend_toml) {
        if std::env::var_os(name).is_none() {
            let value = toml_string(value).map_err(|e| format!("backend.toml: {name}: {e}"))?;
            cmd.env(name, value);
        }
    }
    proc::run(&mut cmd).map_err(|e| format!("backend.toml's configuration: {e}"))
}

/// A one-line TOML string (`"basic"`, with escapes, or `'literal'`).
fn toml_string(v: &str) -> std::result::Result<String, String> {
    if v.starts_with(r#"""""#) || v.starts_with("'''") {
        return Err("multi-line strings are not read here; write the value on one line".into());
    }
    if let Some(inner) = v.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        return Ok(inner.to_owned());
    }
    let inner = v
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .ok_or_else(|| format!("not a one-line TOML string: {v}"))?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let unicode = |chars: &mut std::str::Chars, n: usize| {
            let hex: String = chars.by_ref().take(n).collect();
            u32::from_str_radix(&hex, 16)
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| format!("bad escape \\u{hex}"))
        };
        out.push(match chars.next() {
            Some('"') => '"',
            Some('\\') => '\\',
            Some('n') => '\n',
            Some('t') => '\t',
            Some('r') => '\r',
            Some('b') => '\u{8}',
            Some('f') => '\u{c}',
            Some('u') => unicode(&mut chars, 4)?,
            Some('U') => unicode(&mut chars, 8)?,
            other => return Err(format!("bad escape \\{}", other.unwrap_or(' '))),
        });
    }
    Ok(out)
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
    fn toml_strings_are_read_as_toml_reads_them() {
        assert_eq!(toml_string(r#""[]""#).unwrap(), "[]");
        assert_eq!(
            toml_string(r#""[{\"name\": \"a\\b\"}]\u00e9""#).unwrap(),
            "[{\"name\": \"a\\b\"}]é"
        );
        assert_eq!(
            toml_string(r#"'[{"raw": "\n"}]'"#).unwrap(),
            r#"[{"raw": "\n"}]"#
        );
        assert!(toml_string("[]").is_err());
        assert!(toml_string(r#""\q""#).is_err());
        assert!(toml_string("'''x'''").is_err());
    }

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
