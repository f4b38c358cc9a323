//! Sluice's edge worker, as a library: two workers are built from it, each
//! a thin crate holding only its entry points (`#[event]` exports in a
//! linked library would survive, and keep everything they reach):
//! `collector/` (the public worker: the accept path, the SDK files, the id
//! cookie; every other path passed on to the backend) and `backend/` (the
//! Queue consumers, cron, the Durable Object classes — the `objects`
//! feature — and the admin API, debugger and profiles).
//!
//! The data path reads top to bottom in [`ingest`] (HTTP → Queue) and
//! [`delivery`] (Queue → dedup → storage and destinations). Both are written over small traits so they
//! run natively in unit tests; the `worker` bindings sit in [`platform`].

pub mod admin;
pub mod audience;
pub mod auth;
pub mod compact;
pub mod config;
pub mod cors;
pub mod db;
pub mod decode;
pub mod delivery;
pub mod error;
pub mod http;
pub mod identity;
pub mod ingest;
pub mod live;
pub mod platform;
pub mod ports;
pub mod privacy;
pub mod ratelimit;
pub mod router;
pub mod serve;
pub mod services;
pub mod sinks;

#[cfg(feature = "objects")]
pub use platform::durable::Dedup;
#[cfg(feature = "objects")]
pub use platform::live::Live;
#[cfg(feature = "objects")]
pub use platform::person::Person;
