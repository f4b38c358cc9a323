//! The vendors' documented request shapes, checked independently of the
//! encoders: what a local stub of the vendor validates before it answers
//! (end-to-end tests), and what every request the encoders build must pass
//! (property tests).
//!
//! Each check lists every violation it finds. The rules are the vendors'
//! (required fields, limits, hashed identifiers), not the encoders' choices.

use super::identifiers::is_sha256_hex;
use super::HttpRequest;
use serde_json::{Map, Value};

/// Check `request` against the documented shape of the vendor of `kind`
/// (`meta_capi`, `ga4`, `google_ads`, `tiktok`); `now_ms` for age limits.
pub fn check(kind: &str, request: &HttpRequest, now_ms: i64) -> Result<(), Vec<String>> {
    let mut v = Violations::default();
    if request.method != "POST" {
        v.add(format!("method {} (POST only)", request.method));
    }
    let body: Value = match serde_json::from_slice(&request.body) {
        Ok(b) => b,
        Err(e) => return Err(vec![format!("the body is not JSON: {e}")]),
    };
    let Some(body) = body.as_object() else {
        return Err(vec!["the body is not a JSON object".into()]);
    };
    match kind {
        "meta_capi" => meta(request, body, now_ms, &mut v),
        "ga4" => ga4(request, body, now_ms, &mut v),
        "google_ads" => google_ads(request, body, &mut v),
        "tiktok" => tiktok(request, body, &mut v),
        other => v.add(format!("no shape known for kind {other}")),
    }
    v.into_result()
}

#[derive(Default)]
struct Violations(Vec<String>);

impl Violations {
    fn add(&mut self, s: String) {
        self.0.push(s);
    }
    fn require(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }
    fn into_result(self) -> Result<(), Vec<String>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}

fn header<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn query_param<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    url.split_once('?')?
        .1
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

fn path(url: &str) -> &str {
    let no_query = url.split('?').next().unwrap_or(url);
    no_query
        .find("://")
        .and_then(|i| no_query[i + 3..].find('/').map(|j| &no_query[i + 3 + j..]))
        .unwrap_or(no_query)
}

fn array<'a>(o: &'a Map<String, Value>, key: &str, v: &mut Violations) -> &'a [Value] {
    match o.get(key).and_then(Value::as_array) {
        Some(a) => a,
        None => {
            v.add(format!("`{key}` must be an array"));
            &[]
        }
    }
}

fn hashed_fields(o: &Map<String, Value>, keys: &[&str], at: &str, v: &mut Violations) {
    for key in keys {
        let values: Vec<&Value> = match o.get(*key) {
            None => continue,
            Some(Value::Array(a)) => a.iter().collect(),
            Some(one) => vec![one],
        };
        for value in values {
            v.require(value.as_str().is_some_and(is_sha256_hex), || {
                format!("{at}.{key} must be a SHA-256 hex hash, got {value}")
            });
        }
    }
}

/// Meta: `/{version}/{pixel}/events` with an access token and a JSON
/// content type, 1–1,000 events,
/// each with `event_name`, `event_time` (seconds, ≤ 7 days old),
/// `action_source`; website events with `client_user_agent` and
/// `event_source_url`; contact fields hashed; `Purchase` with `currency` and `value`.
fn meta(request: &HttpRequest, body: &Map<String, Value>, now_ms: i64, v: &mut Violations) {
    let p = path(&request.url);
    let parts: Vec<&str> = p.trim_start_matches('/').split('/').collect();
    v.require(
        parts.len() == 3 && parts[0].starts_with('v') && parts[2] == "events",
        || format!("path {p} is not /{{version}}/{{pixel_id}}/events"),
    );
    v.require(
        query_param(&request.url, "access_token").is_some() || body.contains_key("access_token"),
        || "no access_token".into(),
    );
    v.require(
        header(request, "content-type").is_some_and(|t| t.starts_with("application/json")),
        || "a JSON body needs Content-Type: application/json".into(),
    );
    let data = array(body, "data", v);
    v.require((1..=1000).contains(&data.len()), || {
        format!("data has {} events (1 to 1,000)", data.len())
    });
    for (i, e) in data.iter().enumerate() {
        let at = format!("data[{i}]");
        let Some(e) = e.as_object() else {
            v.add(format!("{at} is not an object"));
            continue;
        };
        v.require(
            e.get("event_name").and_then(Value::as_str).is_some(),
            || format!("{at}.event_name is required"),
        );
        match e.get("event_time").and_then(Value::as_i64) {
            Some(t) => v.require(now_ms / 1000 - t <= 7 * 86_400, || {
                format!("{at}.event_time is more than 7 days old")
            }),
            None => v.add(format!("{at}.event_time must be Unix seconds")),
        }
        let source = e.get("action_source").and_then(Value::as_str);
        v.require(
            matches!(
                source,
                Some(
                    "email"
                        | "website"
                        | "app"
                        | "phone_call"
                        | "chat"
                        | "physical_store"
                        | "system_generated"
                        | "business_messaging"
                        | "other"
                )
            ),
            || format!("{at}.action_source is missing or unknown"),
        );
        let user = e.get("user_data").and_then(Value::as_object);
        let Some(user) = user else {
            v.add(format!("{at}.user_data is required"));
            continue;
        };
        if source == Some("website") {
            v.require(user.get("client_user_agent").is_some(), || {
                format!("{at}: a website event needs user_data.client_user_agent")
            });
            v.require(e.get("event_source_url").is_some(), || {
                format!("{at}: a website event needs event_source_url")
            });
        }
        hashed_fields(
            user,
            &[
                "em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country",
            ],
            &format!("{at}.user_data"),
            v,
        );
        if e.get("event_name").and_then(Value::as_str) == Some("Purchase") {
            let custom = e.get("custom_data").and_then(Value::as_object);
            v.require(
                custom.is_some_and(|c| {
                    c.get("currency").is_some() && c.get("value").is_some_and(Value::is_number)
                }),
                || format!("{at}: Purchase needs custom_data.currency and value"),
            );
        }
    }
}

/// GA4: `/mp/collect` or `/debug/mp/collect` with `measurement_id` and
/// `api_secret`; `client_id`; 1–25 events with valid names (≤ 40, a letter
/// first, letters/digits/`_`) and at most 25 params of valid names, string
/// values ≤ 100 characters (page ones longer); `timestamp_micros` ≤ 72 h old;
/// consent values `GRANTED`/`DENIED`; body ≤ 130 kB.
fn ga4(request: &HttpRequest, body: &Map<String, Value>, now_ms: i64, v: &mut Violations) {
    let p = path(&request.url);
    v.require(matches!(p, "/mp/collect" | "/debug/mp/collect"), || {
        format!("path {p} is not /mp/collect")
    });
    for key in ["measurement_id", "api_secret"] {
        v.require(query_param(&request.url, key).is_some(), || {
            format!("no {key} in the query")
        });
    }
    v.require(request.body.len() <= 130_000, || {
        format!("body of {} bytes (130 kB at most)", request.body.len())
    });
    v.require(
        body.get("client_id").and_then(Value::as_str).is_some(),
        || "client_id is required".into(),
    );
    if let Some(consent) = body.get("consent") {
        let ok = consent.as_object().is_some_and(|c| {
            c.iter().all(|(k, val)| {
                matches!(k.as_str(), "ad_user_data" | "ad_personalization")
                    && matches!(val.as_str(), Some("GRANTED" | "DENIED"))
            })
        });
        v.require(ok, || {
            format!("consent {consent} is not of the documented shape")
        });
    }
    let valid_name = |n: &str| {
        n.len() <= 40
            && n.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let events = array(body, "events", v);
    v.require((1..=25).contains(&events.len()), || {
        format!("{} events (1 to 25)", events.len())
    });
    for (i, e) in events.iter().enumerate() {
        let at = format!("events[{i}]");
        let name = e.get("name").and_then(Value::as_str).unwrap_or_default();
        v.require(valid_name(name), || {
            format!("{at}.name {name:?} is invalid")
        });
        if let Some(t) = e.get("timestamp_micros") {
            v.require(
                t.as_i64()
                    .is_some_and(|t| now_ms * 1000 - t <= 72 * 3_600_000_000),
                || format!("{at}.timestamp_micros is more than 72 hours old"),
            );
        }
        let params = e.get("params").and_then(Value::as_object);
        let Some(params) = params else { continue };
        v.require(params.len() <= 25, || {
            format!("{at} has {} params (25 at most)", params.len())
        });
        for (k, val) in params {
            v.require(valid_name(k), || format!("{at}.params.{k}: invalid name"));
            let max = match k.as_str() {
                "page_location" => 1000,
                "page_referrer" => 420,
                "page_title" => 300,
                _ => 100,
            };
            if let Some(s) = val.as_str() {
                v.require(s.chars().count() <= max, || {
                    format!("{at}.params.{k} is longer than {max} characters")
                });
            }
            if k == "items" {
                v.require(val.as_array().is_some_and(|a| a.len() <= 200), || {
                    format!("{at}.params.items must be an array of at most 200")
                });
            }
        }
    }
}

/// Google Ads: `/{version}/customers/{digits}:uploadClickConversions` with a
/// bearer token and developer token; `partialFailure: true`; 1–2,000
/// conversions, each with a `conversionAction` resource name, a
/// `conversionDateTime` `yyyy-mm-dd hh:mm:ss±hh:mm`, at most one of
/// gclid/gbraid/wbraid, at most 5 hashed user identifiers.
fn google_ads(request: &HttpRequest, body: &Map<String, Value>, v: &mut Violations) {
    let p = path(&request.url);
    let customer = p
        .split("/customers/")
        .nth(1)
        .and_then(|rest| rest.strip_suffix(":uploadClickConversions"));
    v.require(
        customer.is_some_and(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit())),
        || format!("path {p} is not /{{version}}/customers/{{id}}:uploadClickConversions"),
    );
    v.require(
        header(request, "authorization").is_some_and(|a| a.starts_with("Bearer ")),
        || "no Authorization: Bearer".into(),
    );
    v.require(header(request, "developer-token").is_some(), || {
        "no developer-token header".into()
    });
    v.require(
        body.get("partialFailure") == Some(&Value::Bool(true)),
        || "partialFailure must be true".into(),
    );
    let conversions = array(body, "conversions", v);
    v.require((1..=2000).contains(&conversions.len()), || {
        format!("{} conversions (1 to 2,000)", conversions.len())
    });
    for (i, c) in conversions.iter().enumerate() {
        let at = format!("conversions[{i}]");
        let action = c
            .get("conversionAction")
            .and_then(Value::as_str)
            .unwrap_or_default();
        v.require(
            action.starts_with("customers/") && action.contains("/conversionActions/"),
            || format!("{at}.conversionAction {action:?} is not a resource name"),
        );
        let when = c
            .get("conversionDateTime")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let b = when.as_bytes();
        v.require(
            b.len() == 25
                && b[10] == b' '
                && matches!(b[19], b'+' | b'-')
                && b[22] == b':'
                && crate::Timestamp::parse(&format!(
                    "{}T{}{}",
                    &when[..10],
                    &when[11..19],
                    &when[19..]
                ))
                .is_ok(),
            || format!("{at}.conversionDateTime {when:?} is not yyyy-mm-dd hh:mm:ss+hh:mm"),
        );
        let clicks = ["gclid", "gbraid", "wbraid"]
            .iter()
            .filter(|k| c.get(**k).is_some())
            .count();
        v.require(clicks <= 1, || {
            format!("{at} has more than one of gclid, gbraid, wbraid")
        });
        let ids = c.get("userIdentifiers").and_then(Value::as_array);
        let ids = ids.map_or(&[][..], Vec::as_slice);
        v.require(ids.len() <= 5, || {
            format!("{at} has more than 5 userIdentifiers")
        });
        for (j, id) in ids.iter().enumerate() {
            let Some(id) = id.as_object() else { continue };
            let at = format!("{at}.userIdentifiers[{j}]");
            hashed_fields(id, &["hashedEmail", "hashedPhoneNumber"], &at, v);
            if let Some(addr) = id.get("addressInfo").and_then(Value::as_object) {
                hashed_fields(addr, &["hashedFirstName", "hashedLastName"], &at, v);
            }
        }
    }
}

/// TikTok: `/open_api/v1.3/event/track/` with `Access-Token`; `event_source`
/// and `event_source_id`; 1–1,000 events with `event`, `event_time`
/// (seconds), `event_id`; email, phone and external_id hashed.
fn tiktok(request: &HttpRequest, body: &Map<String, Value>, v: &mut Violations) {
    let p = path(&request.url);
    v.require(p == "/open_api/v1.3/event/track/", || {
        format!("path {p} is not /open_api/v1.3/event/track/")
    });
    v.require(header(request, "access-token").is_some(), || {
        "no Access-Token header".into()
    });
    v.require(
        matches!(
            body.get("event_source").and_then(Value::as_str),
            Some("web" | "app" | "offline" | "crm")
        ),
        || "event_source must be web, app, offline or crm".into(),
    );
    v.require(
        body.get("event_source_id")
            .and_then(Value::as_str)
            .is_some(),
        || "event_source_id is required".into(),
    );
    let data = array(body, "data", v);
    v.require((1..=1000).contains(&data.len()), || {
        format!("data has {} events (1 to 1,000)", data.len())
    });
    for (i, e) in data.iter().enumerate() {
        let at = format!("data[{i}]");
        v.require(e.get("event").and_then(Value::as_str).is_some(), || {
            format!("{at}.event is required")
        });
        v.require(e.get("event_time").is_some_and(Value::is_i64), || {
            format!("{at}.event_time must be Unix seconds")
        });
        if let Some(user) = e.get("user").and_then(Value::as_object) {
            hashed_fields(
                user,
                &["email", "phone", "external_id"],
                &format!("{at}.user"),
                v,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str, headers: &[(&str, &str)], body: Value) -> HttpRequest {
        HttpRequest {
            method: "POST",
            url: url.into(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: serde_json::to_vec(&body).unwrap_or_default(),
            events: vec![0],
        }
    }

    #[test]
    fn meta_raw_email_and_missing_user_agent_are_violations() {
        let r = request(
            "https://graph.facebook.com/v24.0/1/events?access_token=t",
            &[],
            serde_json::json!({"data": [{"event_name": "Purchase", "event_time": 1_000,
                "action_source": "website", "user_data": {"em": "jane@example.com"}}]}),
        );
        let errors = check("meta_capi", &r, 1_000_000).unwrap_err();
        let text = errors.join("\n");
        for expected in [
            "Content-Type",
            "client_user_agent",
            "event_source_url",
            "em must be a SHA-256",
            "Purchase needs",
        ] {
            assert!(text.contains(expected), "{expected} not in {text}");
        }
    }

    #[test]
    fn ga4_names_and_lengths_are_checked() {
        let r = request(
            "https://www.google-analytics.com/mp/collect?measurement_id=G-1",
            &[],
            serde_json::json!({"client_id": "c", "events": [{"name": "1bad", "params": {"x": "y".repeat(101)}}]}),
        );
        let text = check("ga4", &r, 0).unwrap_err().join("\n");
        for expected in ["api_secret", "name \"1bad\"", "longer than 100"] {
            assert!(text.contains(expected), "{expected} not in {text}");
        }
    }
}
