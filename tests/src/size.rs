//! What a page downloads up front for the SDK: the inline snippet, the
//! loader (with the glue and the host bundled in) and the wasm, as built
//! into `dist/`, each gzipped (-9);
//! and the two workers' Wasm modules, as deployed.

use crate::root;
use std::io::Write;

/// The SDK's up-front files: (name, raw bytes, gzipped bytes).
pub fn sdk_files() -> Vec<(&'static str, usize, usize)> {
    sdk_parts()
        .into_iter()
        .map(|(name, bytes)| (name, bytes.len(), gzip_len(&bytes)))
        .collect()
}

/// Every part a page loads, as built: (name, bytes).
pub fn sdk_parts() -> Vec<(&'static str, Vec<u8>)> {
    let dir = root().join("dist/site/sluice/v1");
    let read = |p: std::path::PathBuf| {
        std::fs::read(&p)
            .unwrap_or_else(|e| panic!("{} (run `cargo xtask build`): {e}", p.display()))
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&read(dir.join("manifest.json"))).expect("manifest.json is JSON");
    let named = |key: &str| {
        let name = manifest[key]
            .as_str()
            .unwrap_or_else(|| panic!("manifest has no {key}"));
        read(dir.join(name))
    };
    [
        ("inline snippet", read(root().join("sdk/js/snippet.html"))),
        (
            "loader sluice.js (with the glue and the host)",
            read(dir.join("sluice.js")),
        ),
        ("core wasm", named("wasm")),
    ]
    .into_iter()
    .collect()
}

/// The workers' Wasm modules as `cargo xtask build` leaves them for
/// deploying: ("collector" | "backend", bytes).
pub fn worker_modules() -> Vec<(&'static str, Vec<u8>)> {
    ["collector", "backend"]
        .into_iter()
        .map(|name| {
            let p = root()
                .join("edge-worker/build")
                .join(name)
                .join("index_bg.wasm");
            let bytes = std::fs::read(&p)
                .unwrap_or_else(|e| panic!("{} (run `cargo xtask build`): {e}", p.display()));
            (name, bytes)
        })
        .collect()
}

/// Length of `bytes` gzipped at the best compression.
pub fn gzip_len(bytes: &[u8]) -> usize {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).expect("gzip into memory");
    e.finish().expect("gzip into memory").len()
}
