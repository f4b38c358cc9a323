//! The browser identifiers vendors match server-side events on, and when
//! the SDK may send them: decisions for the SDK, which only reads
//! `document.cookie` and `location.search` for them. Written where the
//! destinations read them (`dest::common`):
//!
//! | `context` key | from | needs |
//! | --- | --- | --- |
//! | `fbp` | the `_fbp` cookie (Meta's pixel) | marketing |
//! | `fbc` | the `_fbc` cookie, else `fb.1.<page load ms>.<fbclid>` when the URL carries `fbclid` | marketing |
//! | `ttp` | the `_ttp` cookie (TikTok's pixel) | marketing |
//! | `ga.clientId` | the `_ga` cookie, `GA1.1.X.Y` → `X.Y` | analytics (GA4 is an analytics destination) |
//!
//! The click ids (`gclid`, `gbraid`, `wbraid`, `ttclid`, `msclkid`, …) are
//! already in `context.campaign.clickIds`, from the landing URL (the SDK's
//! `context::campaign`, and the collector from `context.page.url`): campaign
//! attribution, which reaches an advertising vendor only in events whose
//! consent allows that vendor (the fan-out's check).

use crate::text::decimal;
use alloc::string::String;

/// Longest value taken from a cookie or the URL (anything longer is not an id).
pub const MAX_VALUE: usize = 500;

/// The value of `name` in `text`, a list of `name=value` split by `sep`
/// (`;` for `document.cookie`, `&` for a search string), spaces and a `?`
/// before a name ignored. (The same `split` / `split_once` the SDK's
/// campaign reader uses, so the SDK carries that code once.)
pub fn value<'a>(text: &'a str, sep: char, name: &str) -> Option<&'a str> {
    for piece in text.split(sep) {
        if let Some((k, v)) = piece.split_once('=') {
            if k.trim_start_matches(' ').trim_start_matches('?') == name {
                return usable(v).then_some(v);
            }
        }
    }
    None
}

/// An id, not anything else: non-empty, bounded, and nothing that would
/// need escaping in JSON.
fn usable(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= MAX_VALUE
        && !v
            .bytes()
            .any(|b| matches!(b, b'"' | b'\\' | b' ') || b < b' ')
}

/// GA4's client id from the `_ga` cookie: `GA1.1.1234567890.1700000000` →
/// `1234567890.1700000000` (the version and domain-depth fields dropped).
pub fn ga_client_id(ga: &str) -> Option<&str> {
    let (version, rest) = ga.split_once('.')?;
    let (_depth, id) = rest.split_once('.')?;
    let (random, time) = id.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (version.starts_with("GA") && digits(random) && digits(time)).then_some(id)
}

/// Meta's `fbc` for a click id first seen at `ms`: `fb.1.<ms>.<fbclid>`.
pub fn fbc(fbclid: &str, ms: u64) -> String {
    let mut out = String::from("fb.1.");
    out.push_str(&decimal(ms));
    out.push('.');
    out.push_str(fbclid);
    out
}

/// What the SDK sees on the page.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    /// `document.cookie`.
    pub cookies: &'a str,
    /// `location.search`.
    pub search: &'a str,
    /// When the page loaded (the landing time an `fbc` built here carries).
    pub page_ms: u64,
}

/// `"key":"value"`, after a comma unless first.
fn member(out: &mut String, key: &str, v: &str) {
    for part in [
        if out.is_empty() { "" } else { "," },
        "\"",
        key,
        "\":\"",
        v,
        "\"",
    ] {
        out.push_str(part);
    }
}

/// The identifiers the visitor's consent allows, from what the page shows,
/// as JSON object members for `context` (`"fbp":"…","ga":{"clientId":"…"}`;
/// `""` for none). The values need no escaping: [`value`] takes no quote,
/// backslash or control character.
pub fn decide(seen: &Seen<'_>, marketing: bool, analytics: bool) -> String {
    let mut json = String::new();
    let cookie = |name: &str| value(seen.cookies, ';', name);
    if marketing {
        if let Some(v) = cookie("_fbp") {
            member(&mut json, "fbp", v);
        }
        match (cookie("_fbc"), value(seen.search, '&', "fbclid")) {
            (Some(v), _) => member(&mut json, "fbc", v),
            (None, Some(id)) => member(&mut json, "fbc", &fbc(id, seen.page_ms)),
            (None, None) => {}
        }
        if let Some(v) = cookie("_ttp") {
            member(&mut json, "ttp", v);
        }
    }
    if let Some(id) = cookie("_ga").and_then(ga_client_id).filter(|_| analytics) {
        let mut ga = String::new();
        member(&mut ga, "clientId", id);
        let sep = if json.is_empty() { "" } else { "," };
        for part in [sep, "\"ga\":{", &ga, "}"] {
            json.push_str(part);
        }
    }
    json
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const COOKIES: &str = "sluice_aid=a1; _ga=GA1.1.1234567890.1700000000; _fbp=fb.1.1700000000000.987654321; _ttp=tt-abc";
    const LOADED: u64 = 1_764_579_000_123;

    fn keys(cookies: &str, search: &str, marketing: bool, analytics: bool) -> Value {
        let seen = Seen {
            cookies,
            search,
            page_ms: LOADED,
        };
        serde_json::from_str(&["{", &decide(&seen, marketing, analytics), "}"].concat()).unwrap()
    }

    #[test]
    fn ga_cookie_gives_the_client_id() {
        assert_eq!(
            ga_client_id("GA1.1.1234567890.1700000000"),
            Some("1234567890.1700000000")
        );
        assert_eq!(ga_client_id("GA1.2.42.1700000000"), Some("42.1700000000"));
        for bad in [
            "",
            "GA1.1",
            "GA1.1.x.y",
            "UA1.1.1.2",
            "GA1.1.12345",
            "GA1.1..1",
            "GA1.1.1.2.3",
            "GA1.1.1.",
        ] {
            assert_eq!(ga_client_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn fbc_is_built_from_the_click_id_and_when_it_was_seen() {
        assert_eq!(fbc("IwAR2xyz", LOADED), "fb.1.1764579000123.IwAR2xyz");
    }

    #[test]
    fn cookies_and_parameters_are_read_exactly() {
        let cookie = |name| value(COOKIES, ';', name);
        assert_eq!(cookie("_fbp"), Some("fb.1.1700000000000.987654321"));
        assert_eq!(cookie("sluice_aid"), Some("a1"), "the first one too");
        assert_eq!(cookie("fbp"), None);
        assert_eq!(cookie("_fb"), None);
        assert_eq!(value("_fbc=", ';', "_fbc"), None);
        assert_eq!(
            value("_fbc=a\"b", ';', "_fbc"),
            None,
            "not an id: never sent"
        );
        assert_eq!(value("?a=1&fbclid=f1", '&', "fbclid"), Some("f1"));
        assert_eq!(value("?fbclid=f1", '&', "fbclid"), Some("f1"));
        assert_eq!(value("?xfbclid=1", '&', "fbclid"), None);
        assert_eq!(value(&"a".repeat(600), ';', "a"), None);
    }

    #[test]
    fn marketing_consent_sends_the_ad_ids_analytics_the_ga_id() {
        assert_eq!(
            keys(COOKIES, "?utm_source=x&fbclid=IwAR2xyz", true, true),
            json!({"fbp": "fb.1.1700000000000.987654321", "fbc": "fb.1.1764579000123.IwAR2xyz",
                   "ttp": "tt-abc", "ga": {"clientId": "1234567890.1700000000"}})
        );
        assert_eq!(
            keys(COOKIES, "", true, false),
            json!({"fbp": "fb.1.1700000000000.987654321", "ttp": "tt-abc"}),
            "no analytics consent: no _ga id; no fbclid, no _fbc: no fbc"
        );
    }

    #[test]
    fn the_pixels_own_fbc_cookie_wins_over_a_built_one() {
        assert_eq!(
            keys(
                "_fbc=fb.1.1600000000000.pixel",
                "?fbclid=IwAR2xyz",
                true,
                false
            ),
            json!({"fbc": "fb.1.1600000000000.pixel"})
        );
    }

    #[test]
    fn without_marketing_consent_no_ad_id_is_sent() {
        assert_eq!(
            keys(COOKIES, "?fbclid=IwAR2xyz", false, true),
            json!({"ga": {"clientId": "1234567890.1700000000"}}),
            "the analytics id only"
        );
        assert_eq!(keys(COOKIES, "?fbclid=IwAR2xyz", false, false), json!({}));
    }
}
