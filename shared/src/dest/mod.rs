//! Vendor destinations as pure functions: Segment Spec events in, the vendor's
//! HTTP requests out, and the vendor's answer classified per event.
//!
//! Sans-IO like the rest of the crate: the worker's generic HTTP sink sends
//! what [`Destination::encode`] builds and hands the answer to
//! [`Destination::classify`]. Every destination has the same shape, so a new
//! one is a copy of a sibling.
//!
//! ## Catalogue
//!
//! | destination | `kind` | events it takes | identifiers it needs | default purposes | limits a request | deletion call |
//! | --- | --- | --- | --- | --- | --- | --- |
//! | Meta Conversions API ([`meta`]) | `meta_capi` | track (standard events, else custom), page; ≤ 7 days old | `context.userAgent`, `context.page.url`; hashed `em`, `ph`, names, address, `external_id`; `fbp`, `fbc`, IP unhashed | marketing | 1,000 events, 2 MB | no |
//! | Google Analytics 4 ([`ga4`]) | `ga4` | track (recommended events, else snake_case), page, screen; ≤ 72 h old | a client id (`_ga`, `context.ga.clientId`, else anonymousId); `user_id` | analytics | 25 events, 130 kB | no |
//! | Google Ads conversions ([`google_ads`]) | `google_ads` | track events named in `conversion_actions`; ≤ 90 days old | `gclid` / `gbraid` / `wbraid`, or hashed email, phone, name + address | marketing | 2,000 conversions, 4 MB | no |
//! | TikTok Events API ([`tiktok`]) | `tiktok` | track (standard events, else custom), page | `ttclid`, `_ttp`; hashed email, phone, `external_id` | marketing | 1,000 events, 2 MB | no |
//! | Mixpanel ([`mixpanel`]) | `mixpanel` | track, page, screen, identify (profile `$set`, with a userId), alias (original ID merge), group (with `group_key`) | userId or anonymousId | analytics | 2,000 events, 10 MiB | yes (GDPR API) |
//! | Amplitude ([`amplitude`]) | `amplitude` | track, page, screen, identify, group (with `group_type`) | `user_id` or `device_id` (≥ `min_id_length`) | analytics | 2,000 events, 1 MB | yes (User Privacy API) |
//! | PostHog ([`posthog`]) | `posthog` | track, page, screen, identify, alias, group | userId or anonymousId | analytics | 2,000 events (ours), 20 MiB | yes (with a personal API key) |
//! | Braze ([`braze`]) | `braze` | identify (attributes), track (events, purchases), page / screen with `send_pages` | `external_id` (userId) or an anonymous alias | marketing | 75 objects, 4 MiB | yes (`/users/delete`) |
//!
//! Every destination's config has `overrides` ([`common::Overrides`]: allow /
//! deny lists, event renames, property renames), and every `encode` starts
//! with the one pre-filter, [`common::admitted`]: the event's `integrations`
//! object (by [`Destination::NAME`], then [`Destination::ALIASES`]; Segment's
//! rule), then the overrides, in that order. A vendor whose events each make
//! one item of one request kind encodes through [`batching::encode_each`]
//! (pre-filter, its mapping, packing); Mixpanel (three endpoints), GA4 (one
//! request envelope per visitor) and Braze (three arrays a request) call
//! `admitted` themselves. Skipped events are listed in input order. Default
//! purposes are [`Destination::PURPOSES`]; the deletion calls are
//! [`deletion::Deletion`].
//!
//! Shared helpers, one function a job: [`common`] (the pre-filter, event
//! time, context / traits / click-id readers, e-commerce fields, consent
//! signals, ids derived from the messageId, [`common::Problem`]),
//! [`batching`] (packing by count and bytes, framing, requests, verdicts
//! from statuses), [`url`] (base URLs, percent-encoding, redaction),
//! [`identifiers`] (normalise and hash), [`audience`] (Sluice's `Audience
//! Entered` / `Audience Exited` as a profile flag, for the vendors with user
//! profiles), [`retry_after_ms`] (the one
//! `Retry-After` parser), [`shape`] (each vendor's documented request shape,
//! checked by the tests).
//!
//! ## Adding a ninth vendor
//!
//! 1. `dest/<vendor>.rs`, copied from the closest sibling (an advertising
//!    vendor from [`tiktok`], an analytics one from [`posthog`]): a config
//!    struct with `#[serde(deny_unknown_fields)]` and an
//!    `overrides: Overrides` field, an error enum with `code()`, and
//!    `impl Destination` with `NAME`, `ALIASES`, `KIND`, `PURPOSES`,
//!    `limits`, `overrides`, `encode` (`batching::encode_each` with the
//!    vendor's mapping of one event, or `common::admitted` first) and `classify`
//!    (per-event verdicts; `batching::status_verdicts` where the vendor gives
//!    no detail).
//!    A deletion API: an entry in [`deletion`].
//! 2. `pub mod <vendor>;` here and a row in the table above.
//! 3. Golden fixtures under `shared/tests/fixtures/destinations/<vendor>/`
//!    (Segment events in, the exact requests out, the documented answers
//!    and their verdicts), hashed values computed independently
//!    (`expected.py`); a `shape::check` rule for the vendor's request.
//! 4. Tests: the golden test in `shared/tests/destinations.rs` (coded
//!    reasons) and a line in `every_destination_applies_its_overrides_before_mapping`
//!    and in the property test that every event is accounted for once.

use crate::Event;
use serde::de::DeserializeOwned;

#[cfg(feature = "dest")]
pub mod amplitude;
#[cfg(feature = "dest")]
pub mod audience;
#[cfg(feature = "dest")]
pub mod batching;
#[cfg(feature = "dest")]
pub mod braze;
#[cfg(feature = "dest")]
pub mod common;
#[cfg(feature = "dest")]
pub mod deletion;
#[cfg(feature = "dest")]
pub mod ga4;
#[cfg(feature = "dest")]
pub mod google_ads;
#[cfg(feature = "dest")]
pub mod identifiers;
#[cfg(feature = "dest")]
pub mod meta;
#[cfg(feature = "dest")]
pub mod mixpanel;
#[cfg(feature = "dest")]
pub mod posthog;
#[cfg(feature = "dest")]
pub mod shape;
#[cfg(feature = "dest")]
pub mod tiktok;
#[cfg(feature = "dest")]
pub mod url;

/// One request to a vendor, and which events of the input it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Indices into the slice given to [`Destination::encode`].
    pub events: Vec<usize>,
}

/// The vendor's answer to one [`HttpRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    pub status: u16,
    /// `Retry-After` in milliseconds, already parsed (seconds or HTTP date).
    pub retry_after_ms: Option<u64>,
    pub body: String,
}

/// `Retry-After` (delta-seconds or an HTTP date) as milliseconds from `now_ms`.
pub fn retry_after_ms(value: &str, now_ms: i64) -> Option<u64> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(seconds.saturating_mul(1000));
    }
    let at = crate::Timestamp::parse_http_date(value)?;
    Some(u64::try_from(at.0.saturating_sub(now_ms)).unwrap_or(0))
}

/// What became of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Worth trying again, not before `after_ms` when the vendor said so.
    Retry {
        after_ms: Option<u64>,
        reason: String,
    },
    /// Retrying cannot help: dead-letter it with the vendor's reason.
    Permanent {
        reason: String,
    },
    /// Not sent, on purpose (filtered by config, `integrations`, too old for
    /// the vendor, not mappable): recorded, never retried.
    Skipped {
        reason: String,
    },
}

/// A vendor's per-request limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_events: usize,
    pub max_bytes: usize,
}

/// What [`Destination::encode`] returns: the requests, and the events not sent
/// (by index) with why.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Encoded {
    pub requests: Vec<HttpRequest>,
    pub skipped: Vec<(usize, Verdict)>,
}

/// One vendor.
pub trait Destination {
    /// The name used in an event's `integrations` object (`"Meta Conversions API"`).
    const NAME: &'static str;
    /// Other names the `integrations` object may use for it (Segment's older
    /// names: `"Facebook Conversions API"`, `"GA4"`, …); matched after `NAME`.
    const ALIASES: &'static [&'static str] = &[];
    /// The `kind` in `SLUICE_DESTINATIONS`.
    const KIND: &'static str;
    /// The consent purposes the destination needs by default, every one of
    /// them granted (config may add to them): advertising destinations
    /// `marketing`, analytics ones `analytics`.
    const PURPOSES: &'static [crate::consent::Purpose];
    /// Credentials and options (unknown fields rejected).
    type Config: DeserializeOwned;

    fn limits(config: &Self::Config) -> Limits;

    /// The config's `overrides` field (every destination has one), applied
    /// by `common::admitted` before the vendor's mapping.
    #[cfg(feature = "dest")]
    fn overrides(config: &Self::Config) -> &common::Overrides;

    /// The requests for `events` (already consent-filtered by the pipeline);
    /// `now_ms` is the delivery time (Unix ms).
    fn encode(config: &Self::Config, events: &[Event], now_ms: i64) -> Encoded;

    /// Classify the answer to `request`: one verdict per entry of `request.events`, in order.
    fn classify(config: &Self::Config, request: &HttpRequest, answer: &HttpAnswer) -> Vec<Verdict>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_as_seconds_or_an_http_date() {
        assert_eq!(retry_after_ms("120", 0), Some(120_000));
        // 1994-11-06T08:49:37Z is 784111777 s after the epoch (RFC 9110's example date).
        let now_ms = 784_111_777_000 - 5_000;
        assert_eq!(
            retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", now_ms),
            Some(5_000)
        );
        assert_eq!(
            retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", now_ms + 9_000),
            Some(0)
        );
        assert_eq!(retry_after_ms("soon", 0), None);
        assert_eq!(retry_after_ms("Sun, 32 Nov 1994 08:49:37 GMT", 0), None);
        // 1994-11-06T08:49:00Z.
        let now = 784_111_740_000;
        assert_eq!(retry_after_ms("120", now), Some(120_000));
        assert_eq!(
            retry_after_ms("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(37_000)
        );
        assert_eq!(
            retry_after_ms("Sun, 06 Nov 1994 08:48:00 GMT", now),
            Some(0)
        );
        assert_eq!(retry_after_ms("soon", now), None);
        assert_eq!(retry_after_ms("Sun, 06 Foo 1994 08:49:37 GMT", now), None);
        let now = 1_445_412_480_000; // 2015-10-21T07:28:00Z
        assert_eq!(retry_after_ms("120", now), Some(120_000));
        assert_eq!(
            retry_after_ms("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(30_000)
        );
        assert_eq!(
            retry_after_ms("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(0)
        );
        assert_eq!(retry_after_ms("soon", now), None);
        assert_eq!(retry_after_ms("Wed, 21 Oct 2015 07:28:30 PST", now), None);
    }
}
