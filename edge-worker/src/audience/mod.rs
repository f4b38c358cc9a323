//! Audiences and computed traits at the edge: each person's state lives in a
//! Durable Object of its own ([`person`] decides, `platform::person` stores),
//! fed from two places:
//!
//! 1. the collector, before the events go on the Queue, so the answer to
//!    the request carries the visitor's audiences and browser-visible
//!    traits as they are *with* these events (the third product view's
//!    answer already says "hot shoppers"); the events it fed are marked
//!    (`context.sluice.audiences: "fed"`);
//! 2. the events consumer, after the events are stored, for the unmarked
//!    ones (the collector's call failed, or they came another way).
//!
//! The object also recognises the last messageIds it was fed, so a client
//! retrying a batch counts once.
//!
//! Who: the resolved person — `u:<userId>`, or for an anonymous event the
//! user its device is linked to (`identity_links`), else `a:<anonymousId>`.
//! An event with both ids names its device; a device's state is then handed
//! to the user's object once ([`feed`]), and the device's object forwards.
//! Suppressed (deleted) people are not fed; their events never reach a state.
//!
//! A new or changed definition is computed from the lake by a [`backfill`]
//! job (admin API), then continues live.
//!
//! Definitions come from `SLUICE_AUDIENCES` ([`AUDIENCES_VAR`]), validated
//! by [`sluice_shared::audience::Catalog::parse`].

pub mod api;
pub mod backfill;
pub mod feed;
pub mod person;

pub use feed::{feed, feed_stored, profile};

/// The var holding the definitions (JSON; see README "Audiences").
pub const AUDIENCES_VAR: &str = "SLUICE_AUDIENCES";
