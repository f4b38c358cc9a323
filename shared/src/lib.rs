//! The contract between the Sluice SDK and the edge worker.
//!
//! Sans-IO: nothing here reads a clock, draws randomness or touches the
//! network. Callers pass `now` and ids in, so every function is deterministic
//! and tested natively; the same code runs in the browser (wasm32) and on the
//! edge.

pub mod campaign;
pub mod consent;
#[cfg(feature = "enrich")]
pub mod enrich;
pub mod event;
pub mod id;
pub mod parse;
pub mod pipeline;
#[cfg(feature = "plan")]
pub mod plan;
pub mod skew;
pub mod time;
pub mod validate;

pub use event::{Batch, Event, EventType, Object};
pub use pipeline::{QueueMessage, QueuedEvent};
pub use time::Timestamp;
pub use validate::{Limits, ValidEvent, ValidationError};
