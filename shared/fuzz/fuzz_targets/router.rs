//! Fuzz the whole router (decoding, auth, parsing, ingest, admin, SDK files)
//! over the native fakes of the platform: every input must get a well-formed,
//! typed answer. The input format and the checks are those of
//! `edge-worker/tests/common/fuzz.rs`, which the bounded run in
//! `cargo xtask test` uses too.
#![no_main]

#[allow(dead_code, clippy::all)]
#[path = "../../../edge-worker/tests/common/mod.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

thread_local! {
    static HARNESS: common::Harness = common::Harness::new();
}

fuzz_target!(|data: &[u8]| {
    HARNESS.with(|h| {
        h.fake.queued.borrow_mut().clear();
        if let Err(why) = common::fuzz::run_one(h, data) {
            panic!("{why}");
        }
    });
});
