//! Sluice's browser SDK. The JS-facing surface is [`api`]; everything else is
//! plain Rust in small modules.

pub mod api;
mod context;
mod identity;
mod state;
mod transport;

#[cfg(all(test, target_arch = "wasm32"))]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
