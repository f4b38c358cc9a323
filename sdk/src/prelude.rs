//! What std's prelude would give, for `no_std` (deliberately no `ToString`
//! or `format!`: they bring `core::fmt`).

pub use alloc::borrow::ToOwned;
pub use alloc::rc::Rc;
pub use alloc::string::String;
pub use alloc::vec;
pub use alloc::vec::Vec;
