//! The SDK's up-front bytes. Sizes are deterministic for a given toolchain,
//! so they are asserted (speed is only reported, by `cargo xtask bench`).

use sluice_e2e::size::sdk_files;

/// The inline snippet's budget: 1 KB gzipped.
const SNIPPET_MAX_GZ: usize = 1024;

/// A ceiling on snippet + loader (with the glue and the JavaScript host
/// bundled in) + wasm, gzipped, that keeps the size from creeping back up (lowered
/// from 39 KB when the host took over the CMP, context, listener and lock
/// plumbing; raised from 38 KB again when the SDK started sending the
/// vendors' match keys — `_fbp`, `_fbc` / `fbclid`, `_ttp`, `_ga`, gated by
/// consent — and returning each call's messageId: 38,206 → 39,464 bytes,
/// +1.26 KB; raised again by the measured growth when the SDK started
/// keeping the ad click ids for later pages under marketing consent —
/// `match_keys::clicks`, issue 17 — 39,572 → 40,059 bytes, +487; and by the
/// measured growth of the audiences' read path — `audiences()`, `traits()`,
/// `on("audience")` and the cached profile, issue 19 — 40,059 → 41,119
/// bytes, +1,060); lowered to 41,074 when `Sdk` was split into the
/// identity, consent-gate and scheduler state machines, its growth paid for
/// by building without panic locations and by a second wasm-opt round;
/// lowered to 37,651 when the page's calls went through one export and the
/// host's reports through one callback, and the host took over storage, ids
/// and the auth header — issue 18; lowered to 36,513 when the SDK declared
/// the few JS built-ins it uses instead of linking js-sys, whose closure
/// shims stayed in the function table; to 36,228 with the SDK's own
/// size-class heap instead of the TLSF allocator; to 36,127 with one integer
/// parser; to 35,933 with the context's text shared as an `Rc<String>`; to
/// 35,829 with `Purpose::parse` normalising names in one pass; to 35,211
/// with the JS values the core holds in the glue's slab rather than an
/// `externref` table; to 35,004 with the TCF purpose ids pushed in a loop;
/// to 34,287 with every other `collect` into a `Vec` or `String` a loop;
/// to 34,236 with `swap_remove` for `retain` in the memory store; to 34,167
/// with one `drain` in the queue; to 33,985 with `utm_*` values form-decoded
/// by the host; to 33,937 with the match keys' cookies read by the host's
/// `cookies()`; 34,516 once the `externref` table was back, for `track()`'s
/// speed; round 3, by `gzip -9` of each step: 34,574 -> 34,639 with `alias`
/// keeping the same person's traits, 34,451 with the host's callback the
/// module's `wake` export instead of a `Closure`, 33,911 with the site's
/// glue streaming only (no `initSync`, no `__wbg_load` fallbacks, no
/// `encodeInto` polyfill), 33,878 without `passStringToWasm0`'s
/// no-`realloc` path: 33,815 as measured here; round 4, as measured here:
/// 33,526 with TCF's purposes mapped as bits, `tcf::consent_from_bits`,
/// instead of id lists; 33,463 with Consent Mode's pairs read into a list
/// once; 33,427 with a GPP section's opt-outs folded in as they are read,
/// `GppSignals::merge_section`; 33,421 with a burst in a few large
/// requests (the host sends keepalive only a body that fits its budget,
/// and compresses from a `Response` stream, not a `Blob`: 3.1 s → 1.2 s of
/// main-thread time in a 10,000-event burst), paid for by the host's
/// withdraw state held as the number of the post being compressed;
/// 33,420 with a wired request's events written out of the stored queue at
/// once (+9 B: a tab closing as it came back online sent its queue, and
/// the tab that adopted it sent it again), paid for by the host's page-life
/// listeners as `wake.bind`, a shorter test for the uuid's dashes and the
/// loader minified without a second function wrapper around its own;
/// 33,018 with timestamps written by the host's `Date.toISOString` instead
/// of `Timestamp::to_rfc3339` in the Wasm (−402 B); 33,089 with events made
/// while the page is hidden sent by beacon at once (+71 B: a site's own
/// `window` `visibilitychange` listener added after the SDK's lost its
/// event when the page went); 32,893 with one digits-only integer parser
/// (`sluice_shared::text::parse_u64`) instead of core's `str::parse::<u64>`
/// (−196 B); 32,891 with what a beacon refused while hidden sent as usual;
/// 32,754 with the glue bundled into the loader (one file, one request)
/// and the inline snippet downloading the Wasm beside it (+35 B of snippet);
/// 32,555 with the Wasm's functions ordered by call count (`wasm-opt
/// --reorder-functions` after a third `-Oz`); 32,437 with the host's text
/// answers read by one conversion; 32,247 with LLVM's inlining threshold
/// at 8; 31,707 with rustc's MIR inliner on (threshold 20); 29,541 with every
/// function available for inlining across crates instead of both; 28,918
/// built without `reference-types` (JS values in the glue's slab: with
/// that inlining, `track()` is as fast either way); 28,725 with the loader
/// minified again by terser; 27,899 with the SDK's text split and trimmed
/// by ASCII bytes (`sluice_shared::text::split`, `trim_ascii`), not core's
/// char searchers and Unicode whitespace table.
/// It is above the 24 KB the
/// SDK issue asks for: that budget is not met yet (see the README's "Size
/// and speed").
const UP_FRONT_CEILING_GZ: usize = 27_899;

#[test]
fn the_inline_snippet_is_under_one_kilobyte_gzipped() {
    let files = sdk_files();
    let (_, _, gz) = files
        .iter()
        .find(|(name, _, _)| *name == "inline snippet")
        .expect("the snippet is measured");
    assert!(*gz <= SNIPPET_MAX_GZ, "snippet is {gz} bytes gzipped");
}

#[test]
fn sdk_up_front_bytes_stay_under_the_ceiling() {
    let files = sdk_files();
    let total: usize = files.iter().map(|(_, _, gz)| gz).sum();
    assert!(
        total <= UP_FRONT_CEILING_GZ,
        "SDK up front is {total} bytes gzipped (ceiling {UP_FRONT_CEILING_GZ}): {files:?}"
    );
    // Every file is there and non-trivial.
    assert!(files.iter().all(|(_, raw, _)| *raw > 100), "{files:?}");
}

/// The collector's module (`edge-worker/build/collector/index_bg.wasm`, as
/// deployed), gzipped (-9): issue 16's budget for the worker on the accept
/// path, where a bigger module is a slower cold start. The collector holds
/// only the accept path, the SDK files and the id cookie (everything else
/// is the backend's, reached over a service binding): 362,287 bytes as
/// measured here (360,654 with `gzip -9`) when the workers were split
/// (2026-12-01), from 775 KB for the one worker that did everything.
const COLLECTOR_MAX_GZ: usize = 400_000;

#[test]
fn the_collector_worker_is_at_most_400_kb_gzipped() {
    let modules = sluice_e2e::size::worker_modules();
    let sizes: Vec<(&str, usize, usize)> = modules
        .iter()
        .map(|(name, bytes)| (*name, bytes.len(), sluice_e2e::size::gzip_len(bytes)))
        .collect();
    let (_, raw, gz) = sizes
        .iter()
        .copied()
        .find(|(name, _, _)| *name == "collector")
        .expect("the collector is measured");
    assert!(
        gz <= COLLECTOR_MAX_GZ,
        "the collector is {gz} bytes gzipped ({raw} raw), over {COLLECTOR_MAX_GZ}; both: {sizes:?}"
    );
    // The backend is what holds the rest: reported, not budgeted.
    eprintln!("worker modules (name, raw, gzipped): {sizes:?}");
}

/// The collector exports only its fetch handler: an export linked in from
/// the library (a Durable Object class, the queue or cron handler) would
/// keep everything it reaches in the module.
#[test]
fn the_collector_exports_only_its_fetch_handler() {
    let glue = |name: &str| {
        let p = sluice_e2e::root()
            .join("edge-worker/build")
            .join(name)
            .join("index.js");
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{} (run `cargo xtask build`): {e}", p.display()))
    };
    let (collector, backend) = (glue("collector"), glue("backend"));
    // The glue ends with `export{… as Dedup, …, … as default};`.
    let exports = |js: &str| -> Vec<String> {
        let list = js.rsplit("export{").next().unwrap_or_default();
        let list = list.split('}').next().unwrap_or_default();
        list.split(',')
            .filter_map(|e| e.split(" as ").nth(1))
            .map(str::to_owned)
            .collect()
    };
    assert!(
        exports(&collector).iter().any(|e| e == "default"),
        "{:?}",
        exports(&collector)
    );
    for class in ["Dedup", "Live", "Person"] {
        let exported = |js: &str| exports(js).iter().any(|e| e == class);
        assert!(exported(&backend), "the backend exports the class {class}");
        assert!(
            !exported(&collector),
            "the collector exports the class {class}"
        );
    }
    for handler in ["queue", "scheduled"] {
        // worker-build's entrypoint class gets one method per handler.
        let exported = |js: &str| js.contains(&format!(".prototype.{handler}="));
        assert!(exported(&backend), "the backend has a {handler} handler");
        assert!(
            !exported(&collector),
            "the collector has a {handler} handler"
        );
    }
}

/// The npm package's wasm-bindgen types (`sdk.d.ts`) show pages only the
/// page's entry (`op`, which `index.js` wraps): not the host's callback
/// `wake`, an internal export the loader and `index.js` hand to `load`.
#[test]
fn the_npm_types_do_not_list_the_hosts_callback() {
    let p = sluice_e2e::root().join("dist/npm/sluice-sdk/sdk.d.ts");
    let types = std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{} (run `cargo xtask build`): {e}", p.display()));
    assert!(
        types.contains("export function op("),
        "sdk.d.ts lists `op`: {types}"
    );
    assert!(
        !types.contains("function wake(") && !types.contains("readonly wake:"),
        "sdk.d.ts lists the internal `wake` export: {types}"
    );
}
