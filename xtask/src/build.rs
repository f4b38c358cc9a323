//! Builds the SDK (Rust → wasm → wasm-bindgen → wasm-opt → minified glue), the
//! worker (worker-build, with every tool pointed at local binaries), and the
//! static site the worker serves.

use crate::proc::{self, cargo_bin, npm_bin, root, step};
use crate::Result;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the assembled static site goes (`[assets]` in wrangler.toml points here).
pub fn site_dir() -> PathBuf {
    root().join("dist/site")
}

/// Where the SDK files are served from, relative to the site root.
pub const SDK_PATH: &str = "sluice/v1";

/// wasm features rustc's wasm32 target emits by default; wasm-opt must accept them.
const WASM_FEATURES: &[&str] = &[
    "--enable-bulk-memory",
    "--enable-mutable-globals",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-reference-types",
    "--enable-multivalue",
];

/// Build everything the worker serves and runs.
pub fn all() -> Result<()> {
    sdk()?;
    site()?;
    worker()
}

/// The browser SDK into `dist/site/sluice/v1/`: `sluice.js` (loader), `sdk.js` (glue), `sdk_bg.wasm`.
pub fn sdk() -> Result<()> {
    let root = root();
    step("building the SDK (wasm32, release)");
    proc::run(Command::new("cargo").current_dir(&root).args([
        "build",
        "--quiet",
        "-p",
        "sluice-sdk",
        "--lib",
        "--release",
        "--target",
        "wasm32-unknown-unknown",
    ]))?;
    let bindgen_out = root.join("target/sdk-bindgen");
    proc::run(
        Command::new(cargo_bin("wasm-bindgen"))
            .arg("--target")
            .arg("web")
            .arg("--out-name")
            .arg("sdk")
            .arg("--out-dir")
            .arg(&bindgen_out)
            .arg(root.join("target/wasm32-unknown-unknown/release/sluice_sdk.wasm")),
    )?;
    let out = site_dir().join(SDK_PATH);
    mkdir(&out)?;
    proc::run(
        Command::new(npm_bin("wasm-opt"))
            .arg("-Oz")
            .args(WASM_FEATURES)
            .arg(bindgen_out.join("sdk_bg.wasm"))
            .arg("-o")
            .arg(out.join("sdk_bg.wasm")),
    )?;
    minify(&bindgen_out.join("sdk.js"), &out.join("sdk.js"), "esm")?;
    minify(
        &root.join("sdk/js/loader.js"),
        &out.join("sluice.js"),
        "iife",
    )
}

fn minify(from: &Path, to: &Path, format: &str) -> Result<()> {
    proc::run(
        Command::new(npm_bin("esbuild"))
            .arg(from)
            .arg("--minify")
            .arg("--log-level=warning")
            .arg("--target=es2020")
            .arg(format!("--format={format}"))
            .arg(format!("--outfile={}", to.display())),
    )
}

/// Copy `www/` into the site directory (beside the SDK files).
pub fn site() -> Result<()> {
    step("assembling the static site");
    copy_dir(&root().join("www"), &site_dir())
}

/// The worker, with worker-build pointed at the local wasm-bindgen, wasm-opt and esbuild
/// so it downloads nothing.
pub fn worker() -> Result<()> {
    step("building the edge worker (worker-build --release)");
    proc::run(
        Command::new(cargo_bin("worker-build"))
            .arg("--release")
            .current_dir(root().join("edge-worker"))
            .env("WASM_BINDGEN_BIN", cargo_bin("wasm-bindgen"))
            .env("WASM_OPT_BIN", npm_bin("wasm-opt"))
            .env("ESBUILD_BIN", npm_bin("esbuild")),
    )
}

fn mkdir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    mkdir(to)?;
    let entries =
        std::fs::read_dir(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(|e| format!("cannot copy {}: {e}", src.display()))?;
        }
    }
    Ok(())
}
