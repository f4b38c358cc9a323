//! Audiences and computed traits, kept current one event at a time.
//!
//! - [`definition`]: what a site declares (computed traits over a person's
//!   events, audiences as boolean expressions), parsed and validated into a
//!   [`Catalog`] with typed errors ([`DefinitionError`]).
//! - [`expr`]: event filters (name + property conditions) and the audience
//!   expressions, evaluated against a person's values.
//! - [`state`]: one person's [`PersonState`]: each event updates only the
//!   definitions it matches (no history is kept or rescanned), time windows
//!   are exact (a bounded list of timestamps per windowed definition), and
//!   [`PersonState::next_expiry`] says when the next window exit falls, so a
//!   Durable Object alarm can fire it on time.
//! - [`backfill`]: folding a person's events from the lake into their state
//!   for chosen definitions, newest first, without counting an event twice
//!   (live and backfilled, or a redelivered step).
//!
//! Sans-IO like the rest of the crate: callers pass `now` in.

pub mod backfill;
pub mod definition;
pub mod expr;
pub mod state;

pub use definition::{AudienceDef, Catalog, DefinitionError, TraitDef, TraitKind};
pub use expr::{Condition, Expr, Op};
pub use state::{Change, PersonState, View};

/// Events Sluice emits itself when a person enters or leaves an audience;
/// no definition may feed on them (that would loop).
pub const ENTERED: &str = "Audience Entered";
pub const EXITED: &str = "Audience Exited";
