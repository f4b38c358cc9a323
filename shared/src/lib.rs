//! The contract between the Sluice SDK and the edge worker.
//!
//! Sans-IO: nothing here reads a clock, draws randomness or touches the
//! network. Callers pass `now` and ids in, so every function is deterministic
//! and tested natively; the same code runs in the browser (wasm32) and on the
//! edge.
//!
//! Without the `std` feature (on by default) the crate is `no_std` + `alloc`
//! and holds only what the browser SDK uses: consent, ids, campaign names,
//! time and decimal text.

#![cfg_attr(not(any(feature = "std", test)), no_std)]

extern crate alloc;

#[cfg(feature = "std")]
pub mod audience;
pub mod campaign;
pub mod consent;
pub mod cost;
#[cfg(feature = "std")]
pub mod dest;
#[cfg(feature = "enrich")]
pub mod enrich;
#[cfg(feature = "std")]
pub mod event;
pub mod id;
#[cfg(feature = "lake")]
pub mod lake;
pub mod match_keys;
#[cfg(feature = "std")]
pub mod parse;
#[cfg(feature = "std")]
pub mod pipeline;
#[cfg(feature = "plan")]
pub mod plan;
#[cfg(feature = "std")]
pub mod scan;
#[cfg(feature = "std")]
pub mod skew;
#[cfg(feature = "std")]
pub mod splice;
pub mod text;
pub mod time;
#[cfg(feature = "std")]
pub mod validate;

#[cfg(feature = "std")]
pub use event::{Batch, Event, EventType, Object};
#[cfg(feature = "std")]
pub use pipeline::{QueueMessage, QueuedBatch, QueuedEvent};
pub use time::Timestamp;
#[cfg(feature = "std")]
pub use validate::{Limits, ValidEvent, ValidationError};
