//! The SDK's up-front bytes. Sizes are deterministic for a given toolchain,
//! so they are asserted (speed is only reported, by `cargo xtask bench`).

use sluice_e2e::size::sdk_files;

/// The inline snippet's budget: 1 KB gzipped.
const SNIPPET_MAX_GZ: usize = 1024;

/// A ceiling on snippet + loader + glue (with the JavaScript host bundled
/// in) + wasm, gzipped, that keeps the size from creeping back up (lowered
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
/// and the auth header — issue 18). It is above the 24 KB the SDK issue asks
/// for: that budget is not met yet (see the README's "Size and speed").
const UP_FRONT_CEILING_GZ: usize = 37_651;

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
