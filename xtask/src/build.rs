//! Builds the SDK (Rust → wasm → wasm-bindgen → wasm-opt → minified glue), the
//! two workers, collector and backend (worker-build, with every tool pointed
//! at local binaries), and the static site the collector serves.

use crate::names;
use crate::proc::{self, cargo_bin, npm_bin, root, step};
use crate::Result;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the assembled local site goes: the SDK files, the demo shop and the
/// debugger (`wrangler dev --assets ../dist/site`, for `dev` and the tests).
pub fn site_dir() -> PathBuf {
    root().join("dist/site")
}

/// What a production deploy serves (`[assets]` in collector.toml points here):
/// the SDK files and the debugger, without the demo shop.
pub fn public_dir() -> PathBuf {
    root().join("dist/public")
}

/// The files of `www/` that production serves too (the debugger).
pub const PUBLIC_FILES: &[&str] = &["debugger.html", "assets/debugger.css", "assets/debugger.js"];

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

/// The browser SDK into `dist/site/sluice/v1/`: `sluice.js` (the loader with
/// the glue and the host bundled in, at a stable URL), the content-hashed
/// `sdk_bg.<hash>.wasm` (which the collector also serves as `sdk.wasm`), and
/// `manifest.json` (file names, sizes, and the loader's SRI hash); plus the
/// ES module package for bundlers in `dist/npm/`.
pub fn sdk() -> Result<()> {
    let root = root();
    step("building the SDK (wasm32, release, immediate-abort panics)");
    // See `setup::SDK_NIGHTLY`. Its own target directory, so the stable and
    // nightly builds do not invalidate each other's caches.
    proc::run(
        Command::new("cargo")
            .current_dir(&root)
            .env("RUSTUP_TOOLCHAIN", crate::setup::SDK_NIGHTLY)
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            // No file/line/column in panic locations (the paths were in the
            // Wasm's data) and no `Debug` formatting bodies: a panic traps
            // either way (0.3 KB gz).
            // Every function made available to other crates as if
            // `#[inline]` (`-Zcross-crate-inline-threshold=always`): the
            // Wasm 28,074 -> 25,170 B gz. Measured beside it: rustc's MIR
            // inliner (`-Zinline-mir`, off at `-Oz`) 27,400, and with this
            // 26,687; LLVM's inlining threshold at 8 (`-Oz`'s default acts
            // like 5) 27,880, and with this 25,371.
            // Without `reference-types` (JS values in the glue's slab, not
            // an `externref` table each import's Wasm shim manages): 25,170
            // -> 24,402 B of Wasm, +154 B of glue. In round 2 that made
            // `track()` 13 µs instead of 9 µs in `cargo xtask bench sdk`;
            // with the inlining above it is 5.0 µs either way (two runs).
            .env(
                "RUSTFLAGS",
                "-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none -Zfmt-debug=none \
                 -Zcross-crate-inline-threshold=always -Ctarget-feature=-reference-types",
            )
            .args([
                "build",
                "--quiet",
                "-p",
                "sluice-sdk",
                "--lib",
                "--release",
                "--target",
                "wasm32-unknown-unknown",
                "--target-dir",
                "target/sdk-release",
                "-Zbuild-std=core,alloc",
            ]),
    )?;
    let work = root.join("target/sdk-bindgen");
    // Fresh: wasm-bindgen writes `snippets/` by a hash of the crate, and an old one must not linger.
    let _ = std::fs::remove_dir_all(&work);
    proc::run(
        Command::new(cargo_bin("wasm-bindgen"))
            .arg("--target")
            .arg("web")
            .arg("--out-name")
            .arg("sdk")
            .arg("--out-dir")
            .arg(&work)
            .arg(root.join("target/sdk-release/wasm32-unknown-unknown/release/sluice_sdk.wasm")),
    )?;
    // Optimise for size and shorten import/export names; the glue follows the renames.
    let mapping = proc::output(
        Command::new(npm_bin("wasm-opt"))
            // Flattening and re-looping the control flow between two
            // rounds of -Oz finds what one round leaves (0.3 KB gz).
            .args(["-Oz", "--flatten", "--rereloop", "-Oz", "-Oz"])
            // Functions ordered by how often they are called, so that like
            // code sits together for gzip's window (0.25 KB gz; a third -Oz
            // round first lets it find more).
            .args(["-Oz", "--reorder-functions"])
            .args(WASM_FEATURES)
            // rustc lays the wasm out stack first (the 1 MB stack, growing
            // down, then data): the low 1 KB is only touched by a stack 1 MB
            // deep. Saying so lets wasm-opt fold address arithmetic (0.3 KB gz).
            .arg("--low-memory-unused")
            .arg("--minify-imports-and-exports-and-modules")
            // Sections the browser never reads.
            .args([
                "--strip-debug",
                "--strip-producers",
                "--strip-target-features",
            ])
            .arg(work.join("sdk_bg.wasm"))
            .arg("-o")
            .arg(work.join("sdk_bg.opt.wasm")),
    )?;
    let renames = names::parse(&mapping)?;
    let glue = String::from_utf8(read(&work.join("sdk.js"))?)
        .map_err(|_| "wasm-bindgen's glue is not UTF-8".to_owned())?;
    let glue = names::rewrite_glue(&glue, &renames)?;
    write(&work.join("sdk.renamed.js"), glue.as_bytes())?;
    write(&work.join("sdk.site.js"), site_glue(&glue)?.as_bytes())?;
    let wasm = read(&work.join("sdk_bg.opt.wasm"))?;
    let wasm_name = format!("sdk_bg.{}.wasm", content_hash(&wasm));
    let out = site_dir().join(SDK_PATH);
    let _ = std::fs::remove_dir_all(&out);
    mkdir(&out)?;
    write(&out.join(&wasm_name), &wasm)?;
    // The loader is a classic script (`<script async src>`) with the glue
    // and the host (`sdk/js/host.js`, imported by the glue from
    // `snippets/`) bundled in: one request before the Wasm, which the
    // inline snippet fetches beside it. In its own function scope ("iife"),
    // so nothing of the glue's is a page global. Drops what nothing
    // exports any more.
    minify(
        &root.join("sdk/js/loader.js"),
        &out.join("sluice.js"),
        "iife",
        &[
            "--bundle".to_owned(),
            "--tree-shaking=true".to_owned(),
            format!("--alias:sluice-glue={}", work.join("sdk.site.js").display()),
            format!("--define:WASM={wasm_name:?}"),
        ],
    )?;
    terse(&out.join("sluice.js"))?;
    let loader = read(&out.join("sluice.js"))?;
    let manifest = format!(
        "{{\n  \"loader\": \"sluice.js\",\n  \"integrity\": \"{}\",\n  \"wasm\": \"{wasm_name}\",\n  \"bytes\": {{ \"loader\": {}, \"wasm\": {} }}\n}}\n",
        sri(&loader),
        loader.len(),
        wasm.len()
    );
    write(&out.join("manifest.json"), manifest.as_bytes())?;

    // The ES module package for bundlers.
    let npm = root.join("dist/npm/sluice-sdk");
    let _ = std::fs::remove_dir_all(&npm);
    mkdir(&npm)?;
    write(&npm.join("sdk_bg.wasm"), &wasm)?;
    write(&npm.join("sdk.js"), &read(&work.join("sdk.renamed.js"))?)?;
    let types = String::from_utf8(read(&work.join("sdk.d.ts"))?)
        .map_err(|_| "wasm-bindgen's sdk.d.ts is not UTF-8".to_owned())?;
    write(&npm.join("sdk.d.ts"), npm_types(&types).as_bytes())?;
    // The host module the glue imports (`./snippets/<crate>/js/host.js`).
    copy_dir(&work.join("snippets"), &npm.join("snippets"))?;
    for f in ["index.js", "index.d.ts"] {
        write(&npm.join(f), &read(&root.join("sdk/js").join(f))?)?;
    }
    let package = format!(
        "{{\n  \"name\": \"@sluice/sdk\",\n  \"version\": \"{}\",\n  \"type\": \"module\",\n  \"main\": \"index.js\",\n  \"types\": \"index.d.ts\",\n  \"files\": [\"index.js\", \"index.d.ts\", \"sdk.js\", \"sdk.d.ts\", \"sdk_bg.wasm\", \"snippets\"],\n  \"sideEffects\": false,\n  \"license\": \"Apache-2.0\"\n}}\n",
        env!("CARGO_PKG_VERSION")
    );
    write(&npm.join("package.json"), package.as_bytes())
}

/// The glue the loader bundles: wasm-bindgen's, with a streaming-only init
/// and without what the loader never uses or every browser that runs this
/// Wasm (bulk memory, multi-value: Chrome 85, Firefox 79, Safari 15) already has:
/// `initSync` (synchronous compilation), the fallbacks of `__wbg_load` (a
/// `Response` compiled from its bytes when the server's `Content-Type` is
/// not `application/wasm`: the collector serves `application/wasm`; a
/// module or path instead of a `Response`) and the `TextEncoder.encodeInto`
/// polyfill, and `passStringToWasm0`'s path for a call without `realloc`
/// (none is made). The loader passes `fetch(…)`; `WebAssembly.instantiateStreaming`
/// rejects a response that is not ok, and the loader reports it. Bundler
/// users get the whole glue.
fn site_glue(glue: &str) -> Result<String> {
    let stale = |what: &str| {
        Err(format!(
            "wasm-bindgen's glue no longer has {what}; update xtask/src/build.rs"
        ))
    };
    const LOAD: &str = "async function __wbg_load(";
    const EXPORTS: &str = "export { initSync, __wbg_init as default };";
    const ENCODE_INTO: &str = "if (!('encodeInto' in cachedTextEncoder)) {";
    let (Some(load), true) = (glue.find(LOAD), glue.trim_end().ends_with(EXPORTS)) else {
        return stale(&format!("`{LOAD}` and, last, `{EXPORTS}`"));
    };
    let Some(polyfill) = glue.find(ENCODE_INTO) else {
        return stale(&format!("`{ENCODE_INTO}`"));
    };
    let Some(polyfill_len) = glue[polyfill..].find("\n}\n").map(|n| n + 3) else {
        return stale("the end of the `encodeInto` polyfill");
    };
    if polyfill > load || glue[..load].contains("__wbg_init") {
        return stale("the init code last");
    }
    // `passStringToWasm0`'s path for a missing `realloc`, when every call passes one.
    const NO_REALLOC: &str = "    if (realloc === undefined) {";
    let Some(no_realloc) = glue.find(NO_REALLOC) else {
        return stale(&format!("`{NO_REALLOC}`"));
    };
    let Some(no_realloc_len) = glue[no_realloc..].find("\n    }\n").map(|n| n + 7) else {
        return stale("the end of `passStringToWasm0`'s path without `realloc`");
    };
    let two_args = glue.split("passStringToWasm0(").skip(1).any(|call| {
        call.split(')')
            .next()
            .is_some_and(|a| a.matches(',').count() < 2)
    });
    if two_args || no_realloc > polyfill {
        return stale(
            "`passStringToWasm0` called with a `realloc` everywhere, before the polyfill",
        );
    }
    let mut out = String::with_capacity(glue.len());
    out.push_str(&glue[..no_realloc]);
    out.push_str(&glue[no_realloc + no_realloc_len..polyfill]);
    out.push_str(&glue[polyfill + polyfill_len..load]);
    out.push_str(
        "async function __wbg_init(o) {\n\
         \x20   if (wasm !== undefined) return wasm;\n\
         \x20   const { instance, module } = await WebAssembly.instantiateStreaming(o.module_or_path, __wbg_get_imports());\n\
         \x20   return __wbg_finalize_init(instance, module);\n\
         }\n\
         export { __wbg_init as default };\n",
    );
    Ok(out)
}

/// The npm package's `sdk.d.ts`: wasm-bindgen's, without the host's
/// callback `wake` (`skip_typescript` already leaves out its function;
/// this drops it from `InitOutput`, the module's raw exports): pages use
/// `index.js` and never call it.
fn npm_types(types: &str) -> String {
    let mut out = String::with_capacity(types.len());
    for line in types.split_inclusive('\n') {
        if !line.trim_start().starts_with("readonly wake:") {
            out.push_str(line);
        }
    }
    out
}

/// A short content hash for cache-busting file names (FNV-1a 64, hex).
fn content_hash(bytes: &[u8]) -> String {
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{h:016x}")
}

/// Subresource Integrity value: `sha384-<base64>`.
pub fn sri(bytes: &[u8]) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let digest = sha2::Sha384::digest(bytes);
    format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn minify(from: &Path, to: &Path, format: &str, extra: &[String]) -> Result<()> {
    proc::run(
        Command::new(npm_bin("esbuild"))
            .arg(from)
            .arg("--minify")
            .arg("--log-level=warning")
            .arg("--target=es2020")
            .arg(format!("--format={format}"))
            .args(extra)
            .arg(format!("--outfile={}", to.display())),
    )
}

/// Compress and mangle a minified script again with terser (its default,
/// safe options): on esbuild's loader it finds what esbuild leaves,
/// 4,088 -> 3,897 B gzipped (terser's `unsafe` options were 65 B more; not
/// taken).
fn terse(file: &Path) -> Result<()> {
    proc::run(
        Command::new(npm_bin("terser"))
            .arg(file)
            .args(["--compress", "--mangle", "--ecma", "2020"])
            .arg("--output")
            .arg(file),
    )
}

/// Copy `www/` into the site directory (beside the SDK files), and the SDK
/// files and the debugger into the public directory.
pub fn site() -> Result<()> {
    step("assembling the static site (dist/site) and what production serves (dist/public)");
    copy_dir(&root().join("www"), &site_dir())?;
    // The npm package beside the demo shop, for its ES-module page (esm.html).
    copy_dir(
        &root().join("dist/npm/sluice-sdk"),
        &site_dir().join("npm/sluice-sdk"),
    )?;
    let public = public_dir();
    let _ = std::fs::remove_dir_all(&public);
    copy_dir(&site_dir().join(SDK_PATH), &public.join(SDK_PATH))?;
    for file in PUBLIC_FILES {
        let to = public.join(file);
        if let Some(dir) = to.parent() {
            mkdir(dir)?;
        }
        std::fs::copy(root().join("www").join(file), &to)
            .map_err(|e| format!("cannot copy www/{file}: {e}"))?;
    }
    Ok(())
}

/// The two workers built from `edge-worker/` (each a thin crate holding
/// only its entry points), by worker-build into `edge-worker/build/<name>/`.
pub const WORKERS: &[&str] = &["collector", "backend"];

/// The cargo profile a worker is built with: the collector's own (speed:
/// the accept path's CPU per event; see the workspace `Cargo.toml`), the
/// backend's `release` (size).
fn worker_profile(name: &str) -> &'static str {
    match name {
        "collector" => "collector",
        _ => "release",
    }
}

/// A worker's Wasm module as deployed: `edge-worker/build/<name>/index_bg.wasm`.
pub fn worker_wasm(name: &str) -> PathBuf {
    root()
        .join("edge-worker/build")
        .join(name)
        .join("index_bg.wasm")
}

/// The workers, with worker-build pointed at the local wasm-bindgen, wasm-opt and esbuild
/// so it downloads nothing. The two are built at once: each spends much of
/// its time in one-core steps (the final LTO link with one codegen unit,
/// wasm-bindgen, wasm-opt) and their cargo profiles have their own build
/// directories (so neither waits on the other's lock). Measured on two
/// cores: 6.3 min for both in a cold run (6.8 one after the other), ~3.3 min
/// after a change to the worker.
pub fn worker() -> Result<()> {
    for name in WORKERS {
        step(&format!(
            "building the {name} worker (worker-build, profile {}; the workers build at once)",
            worker_profile(name)
        ));
    }
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let builds: Vec<_> = WORKERS
            .iter()
            .map(|name| s.spawn(move || build_worker(name)))
            .collect();
        builds
            .into_iter()
            .map(|b| {
                b.join()
                    .unwrap_or_else(|_| Err("a worker build panicked".into()))
            })
            .collect()
    });
    let failed: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    if failed.is_empty() {
        step("workers built");
        Ok(())
    } else {
        Err(failed.join("; "))
    }
}

/// One worker: worker-build, then the name section stripped.
fn build_worker(name: &str) -> Result<()> {
    let profile = worker_profile(name);
    let profile_args: &[&str] = match profile {
        "release" => &["--release"],
        other => &["--profile", other],
    };
    proc::run(
        Command::new(cargo_bin("worker-build"))
            .args(profile_args)
            .arg("--out-dir")
            .arg(format!("../build/{name}"))
            .current_dir(root().join("edge-worker").join(name))
            .env("WASM_BINDGEN_BIN", cargo_bin("wasm-bindgen"))
            .env("WASM_OPT_BIN", npm_bin("wasm-opt"))
            .env("ESBUILD_BIN", npm_bin("esbuild")),
    )
    .map_err(|e| format!("the {name} worker: {e}"))?;
    // worker-build keeps the function-name section (267 KB raw, 69 KB gzipped
    // of the module): only panics' stack traces read it, and they are logged
    // by message. A smaller module is a faster cold start.
    let wasm = worker_wasm(name);
    proc::run(
        Command::new(npm_bin("wasm-opt"))
            .args(WASM_FEATURES)
            .args(["--strip-debug", "--strip-producers"])
            .arg(&wasm)
            .arg("-o")
            .arg(&wasm),
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

#[cfg(test)]
mod tests {
    use super::{npm_types, site_glue};

    const GLUE: &str = "let a = 1;\n\
        function passStringToWasm0(arg, malloc, realloc) {\n    if (realloc === undefined) {\n        return slow;\n    }\n\n    let len = arg.length;\n}\n\
        const x = passStringToWasm0(ret, wasm.a, wasm.b);\n\
        const cachedTextEncoder = new TextEncoder();\n\n\
        if (!('encodeInto' in cachedTextEncoder)) {\n    cachedTextEncoder.encodeInto = function (arg, view) {\n        return {};\n    };\n}\n\n\
        let WASM_VECTOR_LEN = 0;\n\
        function __wbg_finalize_init(instance, module) {}\n\
        async function __wbg_load(module, imports) { fallback(); }\n\
        function initSync(module) {}\n\
        async function __wbg_init(module_or_path) {}\n\
        export { initSync, __wbg_init as default };\n";

    #[test]
    fn the_site_glue_streams_only_and_keeps_the_rest() {
        let out = site_glue(GLUE).unwrap();
        for gone in ["encodeInto", "__wbg_load", "initSync", "fallback", "slow"] {
            assert!(!out.contains(gone), "{gone} is left in:\n{out}");
        }
        for kept in [
            "let a = 1;",
            "function passStringToWasm0(arg, malloc, realloc) {\n\n    let len = arg.length;\n}\n",
            "new TextEncoder()",
            "let WASM_VECTOR_LEN = 0;",
            "function __wbg_finalize_init",
            "WebAssembly.instantiateStreaming(o.module_or_path, __wbg_get_imports())",
        ] {
            assert!(out.contains(kept), "{kept} is missing in:\n{out}");
        }
        assert!(
            out.ends_with("export { __wbg_init as default };\n"),
            "{out}"
        );
    }

    #[test]
    fn the_npm_types_leave_out_only_the_hosts_callback() {
        let types = "export function op(n: number): any;\nexport interface InitOutput {\n    readonly op: (a: number) => void;\n    readonly wake: (a: number) => void;\n}\n";
        assert_eq!(
            npm_types(types),
            "export function op(n: number): any;\nexport interface InitOutput {\n    readonly op: (a: number) => void;\n}\n"
        );
    }

    #[test]
    fn a_changed_glue_is_an_error_not_a_broken_loader() {
        assert!(site_glue(&GLUE.replace("initSync, ", "")).is_err());
        assert!(site_glue(&GLUE.replace("'encodeInto' in", "x in")).is_err());
        assert!(site_glue(&GLUE.replace("__wbg_load", "load")).is_err());
        assert!(site_glue(&GLUE.replace(", wasm.b)", ")")).is_err());
    }
}
