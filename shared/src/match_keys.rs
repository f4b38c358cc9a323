//! The browser identifiers vendors match server-side events on, and when
//! the SDK may send them: decisions for the SDK, which only reads
//! `document.cookie`, `location.search` and its own stored record for them.
//! Written where the destinations read them (`dest::common`):
//!
//! | `context` key | from | needs |
//! | --- | --- | --- |
//! | `fbp` | the `_fbp` cookie (Meta's pixel) | marketing |
//! | `fbc` | the `_fbc` cookie, else `fb.1.<first seen ms>.<fbclid>` from the stored click | marketing |
//! | `ttp` | the `_ttp` cookie (TikTok's pixel) | marketing |
//! | `gclid`, `gbraid`, `wbraid`, `ttclid`, `msclkid` | the stored clicks | marketing |
//! | `ga.clientId` | the `_ga` cookie, `GA1.1.X.Y` → `X.Y` | analytics (GA4 is an analytics destination) |
//!
//! The click ids ([`CLICKS`]) of the landing URL are kept by the SDK in a
//! first-party record ([`clicks`]: each id with when it was first seen, a
//! newer click replacing an older one of its kind, gone after
//! [`CLICK_TTL_MS`], 90 days like Google's `_gcl_aw`), written only with
//! marketing consent and removed when it is withdrawn, so that a conversion
//! pages after the landing still carries its click. The SDK no longer puts
//! click ids in `context.campaign.clickIds` (its `utm_*` fields stay:
//! analytics attribution).

use crate::text::{decimal, split, split_once, trim_start};
use alloc::string::String;

/// Longest value taken from a cookie or the URL (anything longer is not an id).
pub const MAX_VALUE: usize = 500;

/// The value of `name` in `text`, a list of `name=value` split by `sep`
/// (`;` for `document.cookie`, `&` for a search string), spaces and a `?`
/// before a name ignored. (The same `split` / `split_once` the SDK's
/// campaign reader uses, so the SDK carries that code once.)
pub fn value<'a>(text: &'a str, sep: u8, name: &str) -> Option<&'a str> {
    for piece in split(text, sep) {
        if let Some((k, v)) = split_once(piece, b'=') {
            if trim_start(trim_start(k, b' '), b'?') == name {
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
    let (version, rest) = split_once(ga, b'.')?;
    let (_depth, id) = split_once(rest, b'.')?;
    let (random, time) = split_once(id, b'.')?;
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

/// The click ids the SDK keeps (those the destinations match on).
pub const CLICKS: [&str; 6] = ["gclid", "gbraid", "wbraid", "ttclid", "msclkid", "fbclid"];

/// How long a click is kept: 90 days, like Google's `_gcl_aw` cookie.
pub const CLICK_TTL_MS: u64 = 90 * 24 * 60 * 60 * 1000;

/// A stored click, `<first seen ms>.<id>` from the record's
/// `<name>=<ms>.<id>` (`None` when absent, malformed or expired).
fn entry<'a>(record: &'a str, name: &str, now: u64) -> Option<&'a str> {
    let e = value(record, b'&', name)?;
    let (ms, id) = split_once(e, b'.')?;
    let ms = crate::text::parse_u64(ms)?;
    (!id.is_empty() && ms <= now && now - ms < CLICK_TTL_MS).then_some(e)
}

/// The id of a stored click's entry.
fn id_of(entry: &str) -> Option<&str> {
    split_once(entry, b'.').map(|(_, id)| id)
}

/// The record to keep after a page load: the stored `record` (`""` for
/// none) with the click ids of the landing URL's `search` seen at `now`. An
/// id already stored keeps when it was first seen; a different one of the
/// same kind replaces it; expired and malformed entries are dropped.
/// `name=<ms>.<id>` pairs joined by `&` (`""` for none).
pub fn clicks(record: &str, search: &str, now: u64) -> String {
    let mut out = String::new();
    let seen_now = decimal(now);
    for name in CLICKS {
        let kept = entry(record, name, now);
        let (ms, id) = match value(search, b'&', name) {
            Some(id) if kept.and_then(id_of) != Some(id) => (seen_now.as_str(), id),
            _ => match kept {
                Some(e) => (e, ""),
                None => continue,
            },
        };
        let sep = if out.is_empty() { "" } else { "&" };
        let dot = if id.is_empty() { "" } else { "." };
        for part in [sep, name, "=", ms, dot, id] {
            out.push_str(part);
        }
    }
    out
}

/// What the SDK sees on the page.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    /// `document.cookie`.
    pub cookies: &'a str,
    /// The clicks kept at this page load ([`clicks`]: none expired).
    pub clicks: &'a str,
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
    let cookie = |name: &str| value(seen.cookies, b';', name);
    if marketing {
        if let Some(v) = cookie("_fbp") {
            member(&mut json, "fbp", v);
        }
        let click = |name| value(seen.clicks, b'&', name);
        match (cookie("_fbc"), click("fbclid")) {
            (Some(v), _) => member(&mut json, "fbc", v),
            // `fb.1.<ms>.<fbclid>`: the entry is `<ms>.<fbclid>`.
            (None, Some(e)) => member(&mut json, "fbc", &(String::from("fb.1.") + e)),
            (None, None) => {}
        }
        if let Some(v) = cookie("_ttp") {
            member(&mut json, "ttp", v);
        }
        for name in &CLICKS[..5] {
            if let Some(id) = click(name).and_then(id_of) {
                member(&mut json, name, id);
            }
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
        let record = clicks("", search, LOADED);
        let seen = Seen {
            cookies,
            clicks: &record,
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
        let cookie = |name| value(COOKIES, b';', name);
        assert_eq!(cookie("_fbp"), Some("fb.1.1700000000000.987654321"));
        assert_eq!(cookie("sluice_aid"), Some("a1"), "the first one too");
        assert_eq!(cookie("fbp"), None);
        assert_eq!(cookie("_fb"), None);
        assert_eq!(value("_fbc=", b';', "_fbc"), None);
        assert_eq!(
            value("_fbc=a\"b", b';', "_fbc"),
            None,
            "not an id: never sent"
        );
        assert_eq!(value("?a=1&fbclid=f1", b'&', "fbclid"), Some("f1"));
        assert_eq!(value("?fbclid=f1", b'&', "fbclid"), Some("f1"));
        assert_eq!(value("?xfbclid=1", b'&', "fbclid"), None);
        assert_eq!(value(&"a".repeat(600), b';', "a"), None);
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

    const DAY: u64 = 24 * 60 * 60 * 1000;

    #[test]
    fn the_landing_urls_clicks_are_kept_with_when_they_were_first_seen() {
        assert_eq!(
            clicks("", "?utm_source=g&gclid=G1&ttclid=T1&dclid=D", LOADED),
            "gclid=1764579000123.G1&ttclid=1764579000123.T1",
            "only the ids destinations match on; utm_* is not a click"
        );
        assert_eq!(clicks("", "?utm_source=g", LOADED), "");
        let record = clicks("", "?gclid=G1&msclkid=M1", 1000);
        assert_eq!(
            clicks(&record, "?gclid=G1", 5000),
            "gclid=1000.G1&msclkid=1000.M1",
            "the same click again (a reload) keeps its first-seen time"
        );
        assert_eq!(
            clicks(&record, "?gclid=G2&wbraid=W1", 5000),
            "gclid=5000.G2&wbraid=5000.W1&msclkid=1000.M1",
            "a newer click replaces the older one of its kind, the others stay"
        );
        assert_eq!(clicks(&record, "", 5000), record, "a later page keeps them");
    }

    #[test]
    fn clicks_expire_after_90_days() {
        let record = clicks("", "?gclid=G1&ttclid=T1", 0);
        assert_eq!(
            clicks(&record, "?ttclid=T2", 90 * DAY - 1),
            "gclid=0.G1&ttclid=7775999999.T2"
        );
        assert_eq!(clicks(&record, "", 90 * DAY), "", "gone on the 90th day");
    }

    #[test]
    fn a_damaged_record_loses_only_the_damaged_entries() {
        assert_eq!(
            clicks(
                "gclid=x.G1&ttclid=5.&msclkid=7.M1&wbraid=9&gbraid=99999999999999.B",
                "",
                10
            ),
            "msclkid=7.M1",
            "no time, no id, no separator, or a time in the future: dropped"
        );
    }

    #[test]
    fn stored_clicks_go_out_with_marketing_consent_only() {
        let record = clicks(
            "",
            "?gclid=G1&gbraid=B1&ttclid=T1&msclkid=M1&fbclid=F1",
            LOADED,
        );
        let later = LOADED + DAY;
        let on_a_later_page = |marketing, analytics| -> Value {
            let seen = Seen {
                cookies: "",
                clicks: &clicks(&record, "", later),
            };
            serde_json::from_str(&["{", &decide(&seen, marketing, analytics), "}"].concat())
                .unwrap()
        };
        assert_eq!(
            on_a_later_page(true, false),
            json!({"fbc": "fb.1.1764579000123.F1", "gclid": "G1", "gbraid": "B1",
                   "ttclid": "T1", "msclkid": "M1"}),
            "fbc carries when the click was first seen, not this page's load"
        );
        assert_eq!(on_a_later_page(false, true), json!({}));
    }
}
