//! Sluice's browser SDK. The JS-facing surface is [`api`]; everything else is
//! plain Rust in small modules. Events are written as JSON text in the Wasm
//! ([`json`]); only the page's own values (properties, traits) go through
//! `JSON.stringify` (no serde, for size and speed). Their shape is the Segment
//! Spec of `sluice_shared`, which the tests check.

pub mod api;
mod consent;
mod context;
mod js;
pub mod json;
mod options;
mod pages;
pub mod queue;
pub mod retry;
mod sdk;
pub mod session;
mod storage;
mod tabs;
mod transport;

#[cfg(all(test, target_arch = "wasm32"))]
mod browser_tests;

#[cfg(all(test, target_arch = "wasm32"))]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// The wasm heap: a two-level segregated-fit allocator (constant time, 2 KB
/// of wasm where std's dlmalloc is 7 KB), built for code size.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: rlsf::SmallGlobalTlsf = rlsf::SmallGlobalTlsf::new();
