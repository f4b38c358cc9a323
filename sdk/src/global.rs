//! The SDK's few globals. In the browser the SDK is `no_std` (no formatting
//! or panic machinery in the Wasm), and `no_std` has no `thread_local!`; a
//! `wasm32-unknown-unknown` module without the `atomics` feature has exactly
//! one thread, so a plain `static` is what a thread-local would be. Natively
//! (unit tests, clippy) the same names are real thread-locals.

/// Declare globals, used as `NAME.with(|value| …)` on every target.
macro_rules! globals {
    ($($(#[$attr:meta])* static $name:ident: $ty:ty = $init:expr;)*) => {
        $(
            $(#[$attr])*
            #[cfg(target_arch = "wasm32")]
            static $name: $crate::global::Global<$ty> = $crate::global::Global::new($init);
        )*
        #[cfg(not(target_arch = "wasm32"))]
        std::thread_local! {
            $($(#[$attr])* static $name: $ty = const { $init };)*
        }
    };
}
pub(crate) use globals;

#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
compile_error!("the SDK's globals assume a single-threaded Wasm module (no `atomics`)");

/// A value in a `static` of a single-threaded Wasm module.
#[cfg(target_arch = "wasm32")]
pub struct Global<T>(T);

// SAFETY: without the `atomics` target feature (checked above) a wasm32
// module cannot start a second thread, so no `Global` is ever reached from
// two threads; `Sync` only lets it live in a `static`.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
unsafe impl<T> Sync for Global<T> {}

#[cfg(target_arch = "wasm32")]
impl<T: 'static> Global<T> {
    pub const fn new(value: T) -> Self {
        Global(value)
    }

    /// The same signature as `LocalKey::with`.
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.0)
    }
}
