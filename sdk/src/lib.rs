//! Sluice's browser SDK. The JS-facing surface is [`api`]; everything else is
//! plain Rust in small modules. Events are written as JSON text in the Wasm
//! ([`json`]); only the page's own values (properties, traits) go through
//! `JSON.stringify` (no serde, for size and speed). Their shape is the Segment
//! Spec of `sluice_shared`, which the tests check.
//!
//! In the browser the crate is `no_std` + `alloc`: std's panic handler and
//! `thread_local!` bring `core::fmt` and several KB of Wasm with them. A panic
//! (a bug) traps, and the trap surfaces as a JS exception from the call that
//! hit it, as it did with `panic = "abort"`.

#![cfg_attr(all(target_arch = "wasm32", not(test)), no_std)]

extern crate alloc;

pub mod api;
mod audiences;
mod consent;
mod context;
pub mod gate;
mod global;
pub mod heap;
mod host;
pub mod identity;
mod js;
pub mod json;
mod options;
mod pages;
mod prelude;
pub mod queue;
pub mod retry;
pub mod schedule;
mod sdk;
pub mod session;
mod storage;
mod transport;

#[cfg(all(test, target_arch = "wasm32"))]
mod browser_tests;

#[cfg(all(test, target_arch = "wasm32"))]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// The wasm heap: power-of-two size classes with free lists ([`heap`]).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: heap::Allocator = heap::Allocator::new();

#[cfg(all(target_arch = "wasm32", not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}
