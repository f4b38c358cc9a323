//! Braze: `/users/track` (attributes, events, purchases).
//!
//! | Segment call | Braze |
//! | --- | --- |
//! | identify | one `attributes` object: `email`, `firstName` → `first_name`, `lastName` → `last_name`, `phone`, `gender` (→ `M`/`F`/`O`/`N`/`P`), `birthday` → `dob`, `address.city` → `home_city`, `address.country` → `country`, `avatar` → `image_url`; other traits as custom attributes |
//! | track `Order Completed` with `products` | one `purchases` object per product: `product_id` (else `sku`), `currency` (the order's, else USD), `price`, `quantity` (default 1), the product's other fields as `properties` |
//! | other track | one `events` object: `name`, `time`, `properties` |
//! | `Audience Entered` / `Audience Exited` | one `attributes` object: the user and the custom attribute `{<audience>: true / false}` ([`super::audience`]) |
//! | with `ecommerce_events`: `Product Viewed`, `Checkout Started`, `Order Completed`, `Order Refunded`, `Order Cancelled` | `ecommerce.product_viewed`, `ecommerce.checkout_started`, `ecommerce.order_placed`, `ecommerce.order_refunded`, `ecommerce.order_cancelled` with Braze's schema (`order_id`, `total_value`, `currency`, `products[]` of `product_id`, `product_name`, `variant_id`, `quantity`, `price`, `source`); an event missing a required field is skipped, naming it |
//! | page / screen | an event `Page Viewed` / `Screen Viewed` when `send_pages` is on; skipped otherwise |
//! | group, alias | not sent (skipped with a reason) |
//!
//! The user is `external_id` = userId, or for anonymous visitors a
//! `user_alias` `{alias_name: anonymousId, alias_label: "anonymous_id"}` with
//! `_update_existing_only: false` (so Braze creates the alias-only profile).
//! At most 75 objects (attributes + events + purchases) a request. A 201 may
//! carry `errors` (Braze's "minor errors") naming `input_array` and `index`:
//! those events are permanent with Braze's message, the rest delivered. 400
//! and 401/403 are permanent; 429 (with `Retry-After` or `X-RateLimit-Reset`,
//! folded into `retry_after_ms` by the worker: see
//! [`batching::rate_limit_reset_ms`]) and 5xx retry.
//!
//! Mapping an error back to its event needs no extra field on the wire: a
//! request lists its identify events first (one attribute object each), then
//! the events (one each), then the orders, whose purchases are told apart by
//! (user, time); two orders of one user at the same millisecond never share a
//! request.

use super::batching::{self, headers, to_bytes};
use super::common::{self, context_text, event_time_rfc3339, Overrides};
use super::{Destination, Encoded, HttpAnswer, HttpRequest, Limits, Verdict};
use crate::consent::Purpose;
use crate::{Event, EventType, Object};
use serde::Deserialize;
use serde_json::{json, Value};
use std::fmt;

mod ecommerce;

/// The Braze destination.
pub struct Braze;

/// `kind = "braze"` in `SLUICE_DESTINATIONS`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrazeConfig {
    /// A REST API key with `users.track` (and `users.delete` for deletions).
    pub rest_api_key: String,
    /// The instance's REST endpoint, e.g. `https://rest.iad-01.braze.com`.
    #[serde(deserialize_with = "crate::dest::url::base_url")]
    pub rest_endpoint: String,
    /// The app identifier events and purchases are attributed to.
    #[serde(default)]
    pub app_id: Option<String>,
    /// Send page and screen calls as events.
    #[serde(default)]
    pub send_pages: bool,
    /// Send the e-commerce spec as Braze's recommended eCommerce events
    /// (`ecommerce.order_placed`, …) instead of legacy purchases: new Braze
    /// workspaces have no purchase objects.
    #[serde(default)]
    pub ecommerce_events: bool,
    /// Event allow / deny lists, renames, property renames ([`Overrides`]).
    #[serde(default)]
    pub overrides: Overrides,
}

/// Why a Braze call cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrazeError {
    /// The user id to delete is empty.
    EmptyUserId,
}

impl BrazeError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            BrazeError::EmptyUserId => "braze_empty_user_id",
        }
    }
}

impl fmt::Display for BrazeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BrazeError::EmptyUserId => "the user id to delete is empty",
        })
    }
}

impl std::error::Error for BrazeError {}

/// 75 objects a request (Braze's); 4 MB (ours: 75 events of Sluice's 32 KB fit).
pub const LIMITS: Limits = Limits {
    max_events: 75,
    max_bytes: 4 * 1024 * 1024,
};

/// Bytes of `{"attributes":[],"events":[],"purchases":[]}`.
const FRAME_BYTES: usize = 45;

/// Segment traits that become Braze standard attributes (or are consumed by one).
const STANDARD: &[(&str, &str)] = &[
    ("email", "email"),
    ("firstName", "first_name"),
    ("first_name", "first_name"),
    ("lastName", "last_name"),
    ("last_name", "last_name"),
    ("phone", "phone"),
    ("avatar", "image_url"),
];

/// Which array a Segment event lands in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Array {
    Attributes,
    Events,
    Purchases,
}

impl Array {
    fn key(self) -> &'static str {
        match self {
            Array::Attributes => "attributes",
            Array::Events => "events",
            Array::Purchases => "purchases",
        }
    }
}

struct Mapped {
    array: Array,
    objects: Vec<Vec<u8>>,
    /// For purchases: (user, time), which tells one order's purchases from the next.
    key: Option<(String, String)>,
}

fn identifier(event: &Event) -> Option<Object> {
    let mut id = Object::new();
    match (&event.user_id, &event.anonymous_id) {
        (Some(u), _) => {
            id.insert("external_id".into(), u.as_str().into());
        }
        (None, Some(a)) => {
            id.insert(
                "user_alias".into(),
                json!({"alias_name": a, "alias_label": "anonymous_id"}),
            );
            id.insert("_update_existing_only".into(), false.into());
        }
        (None, None) => return None,
    }
    Some(id)
}

fn gender(v: &Value) -> Option<&'static str> {
    let g = v.as_str()?.trim().to_ascii_lowercase();
    Some(match g.as_str() {
        "m" | "male" | "man" => "M",
        "f" | "female" | "woman" => "F",
        "o" | "other" | "non-binary" | "nonbinary" => "O",
        "n" | "not applicable" => "N",
        "p" | "prefer not to say" => "P",
        _ => return None,
    })
}

/// `YYYY-MM-DD` from a birthday given as a date or a date-time.
fn dob(v: &Value) -> Option<String> {
    let s = v.as_str()?;
    let d = s.get(..10)?;
    let ok = d.bytes().enumerate().all(|(i, b)| match i {
        4 | 7 => b == b'-',
        _ => b.is_ascii_digit(),
    });
    ok.then(|| d.to_owned())
}

fn attributes(event: &Event, mut obj: Object) -> Object {
    let traits = event
        .traits
        .clone()
        .or_else(|| common::context_at(event, &["traits"])?.as_object().cloned())
        .unwrap_or_default();
    for (k, v) in traits {
        if let Some((_, to)) = STANDARD.iter().find(|(from, _)| *from == k) {
            obj.insert((*to).into(), v);
            continue;
        }
        match k.as_str() {
            "gender" => {
                if let Some(g) = gender(&v) {
                    obj.insert("gender".into(), g.into());
                }
            }
            "birthday" => {
                if let Some(d) = dob(&v) {
                    obj.insert("dob".into(), d.into());
                }
            }
            "address" => {
                for (from, to) in [("city", "home_city"), ("country", "country")] {
                    if let Some(s) = v.get(from).and_then(Value::as_str) {
                        obj.insert(to.into(), s.into());
                    }
                }
            }
            "id" | "userId" => {}
            _ => {
                obj.insert(k, v);
            }
        }
    }
    obj
}

fn purchases(
    config: &BrazeConfig,
    event: &Event,
    id: &Object,
    time: &str,
    products: &[Value],
) -> Result<Vec<Value>, String> {
    let props = event.properties.as_ref();
    let currency = props
        .and_then(|p| p.get("currency")?.as_str())
        .map_or_else(|| "USD".to_owned(), str::to_ascii_uppercase);
    products
        .iter()
        .enumerate()
        .map(|(n, product)| {
            let p = product
                .as_object()
                .ok_or_else(|| format!("products[{n}] is not an object"))?;
            let product_id = ["product_id", "sku", "id"]
                .iter()
                .find_map(|k| match p.get(*k) {
                    Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                    Some(Value::Number(n)) => Some(n.to_string()),
                    _ => None,
                })
                .ok_or_else(|| format!("products[{n}] has no product_id or sku"))?;
            let price = p
                .get("price")
                .filter(|v| v.is_number())
                .ok_or_else(|| format!("products[{n}] has no numeric price"))?;
            let quantity = p.get("quantity").and_then(Value::as_u64).unwrap_or(1);
            let rest: Object = p
                .iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "product_id" | "sku" | "id" | "price" | "quantity" | "currency"
                    )
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let mut obj = id.clone();
            if let Some(app) = &config.app_id {
                obj.insert("app_id".into(), app.as_str().into());
            }
            obj.insert("product_id".into(), product_id.into());
            obj.insert("currency".into(), currency.as_str().into());
            obj.insert("price".into(), price.clone());
            obj.insert("quantity".into(), quantity.into());
            obj.insert("time".into(), time.into());
            if !rest.is_empty() {
                obj.insert("properties".into(), rest.into());
            }
            Ok(obj.into())
        })
        .collect()
}

fn custom_event(config: &BrazeConfig, id: &Object, name: &str, time: &str, props: Object) -> Value {
    let mut obj = id.clone();
    if let Some(app) = &config.app_id {
        obj.insert("app_id".into(), app.as_str().into());
    }
    obj.insert("name".into(), name.into());
    obj.insert("time".into(), time.into());
    if !props.is_empty() {
        obj.insert("properties".into(), props.into());
    }
    obj.into()
}

fn map(config: &BrazeConfig, event: &Event, now_ms: i64) -> Result<Mapped, String> {
    let id = identifier(event).ok_or("Braze needs a userId or an anonymousId")?;
    let time = event_time_rfc3339(event, now_ms);
    let one = |array, v: Value| Mapped {
        array,
        objects: vec![to_bytes(&v)],
        key: None,
    };
    if let Some(m) = super::audience::membership(event) {
        let mut attrs = id;
        attrs.extend(m.flag());
        return Ok(one(Array::Attributes, attrs.into()));
    }
    match event.kind {
        EventType::Identify => Ok(one(Array::Attributes, attributes(event, id).into())),
        EventType::Track => {
            let name = event
                .event
                .as_deref()
                .filter(|n| !n.is_empty())
                .ok_or("track without an event name")?;
            let props = event.properties.clone().unwrap_or_default();
            if config.ecommerce_events {
                if let Some((braze_name, shaped)) = ecommerce::event(event, name, &props)? {
                    return Ok(one(
                        Array::Events,
                        custom_event(config, &id, braze_name, &time, shaped),
                    ));
                }
            }
            let products = props.get("products").and_then(Value::as_array);
            match products.filter(|p| name == "Order Completed" && !p.is_empty()) {
                Some(products) => Ok(Mapped {
                    array: Array::Purchases,
                    objects: purchases(config, event, &id, &time, products)?
                        .iter()
                        .map(to_bytes)
                        .collect(),
                    key: Some((Value::from(id).to_string(), time)),
                }),
                None => Ok(one(
                    Array::Events,
                    custom_event(config, &id, name, &time, props),
                )),
            }
        }
        EventType::Page | EventType::Screen if config.send_pages => {
            let mut props = event.properties.clone().unwrap_or_default();
            if let Some(n) = &event.name {
                props.entry("name").or_insert(n.as_str().into());
            }
            if let Some(url) = context_text(event, &["page", "url"]) {
                props.entry("url").or_insert(url.into());
            }
            let name = if event.kind == EventType::Page {
                "Page Viewed"
            } else {
                "Screen Viewed"
            };
            Ok(one(
                Array::Events,
                custom_event(config, &id, name, &time, props),
            ))
        }
        EventType::Page | EventType::Screen => {
            Err("page and screen calls are not sent to Braze (send_pages is off)".into())
        }
        EventType::Group => Err("group: not mapped to Braze".into()),
        EventType::Alias => {
            Err("alias: Braze merges users through /users/identify, not sent".into())
        }
    }
}

fn body(items: &[(usize, Mapped)], group: &[usize]) -> Vec<u8> {
    let mut out = b"{".to_vec();
    for array in [Array::Attributes, Array::Events, Array::Purchases] {
        let objects: Vec<&[u8]> = group
            .iter()
            .map(|&k| &items[k].1)
            .filter(|m| m.array == array)
            .flat_map(|m| m.objects.iter().map(Vec::as_slice))
            .collect();
        if objects.is_empty() {
            continue;
        }
        if out.len() > 1 {
            out.push(b',');
        }
        out.extend_from_slice(format!("\"{}\":", array.key()).as_bytes());
        out.extend_from_slice(&batching::Framing::ARRAY.body(objects));
    }
    out.push(b'}');
    out
}

impl Destination for Braze {
    const NAME: &'static str = "Braze";
    const KIND: &'static str = "braze";
    const PURPOSES: &'static [Purpose] = &[Purpose::Marketing];
    type Config = BrazeConfig;

    fn limits(_config: &BrazeConfig) -> Limits {
        LIMITS
    }

    fn overrides(config: &BrazeConfig) -> &Overrides {
        &config.overrides
    }

    fn encode(config: &BrazeConfig, events: &[Event], now_ms: i64) -> Encoded {
        let mut out = Encoded::default();
        let mut items: Vec<(usize, Mapped)> = Vec::new();
        for (i, event) in common::admitted::<Self>(config, events, &mut out.skipped) {
            match map(config, &event, now_ms) {
                Ok(m) => items.push((i, m)),
                Err(reason) => out.skipped.push((i, Verdict::Skipped { reason })),
            }
        }
        // Attributes, then events, then purchases; input order within each.
        items.sort_by_key(|(i, m)| (m.array, *i));
        let sizes: Vec<(usize, usize)> = items
            .iter()
            .map(|(_, m)| {
                let bytes = m.objects.iter().map(|o| o.len() + 1).sum::<usize>();
                (m.objects.len(), bytes)
            })
            .collect();
        // Two purchases of one user at the same time never share a request.
        let same_order = |prev: usize, next: usize| {
            items[next].1.key.is_some() && items[prev].1.key == items[next].1.key
        };
        let chunks = batching::chunk_by(&sizes, LIMITS, FRAME_BYTES, 0, same_order);
        for k in chunks.oversize {
            let (w, b) = sizes[k];
            let reason = format!(
                "the event makes {w} Braze objects ({b} bytes): more than one request holds"
            );
            out.skipped
                .push((items[k].0, Verdict::Permanent { reason }));
        }
        let groups = chunks.groups;
        let url = format!("{}/users/track", config.rest_endpoint.trim_end_matches('/'));
        let auth = format!("Bearer {}", config.rest_api_key);
        out.requests = groups
            .iter()
            .map(|group| HttpRequest {
                method: "POST",
                url: url.clone(),
                headers: headers(&[
                    ("Content-Type", "application/json"),
                    ("Authorization", &auth),
                ]),
                body: body(&items, group),
                events: group.iter().map(|&k| items[k].0).collect(),
            })
            .collect();
        out.skipped.sort_by_key(|(i, _)| *i);
        out
    }

    fn classify(_config: &BrazeConfig, request: &HttpRequest, answer: &HttpAnswer) -> Vec<Verdict> {
        let n = request.events.len();
        let body: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        let message = batching::str_at(&body, "message").unwrap_or("");
        let success = (200..300).contains(&answer.status);
        if !success {
            let detail = if message.is_empty() {
                batching::excerpt(&answer.body)
            } else {
                message
            };
            return batching::status_verdicts(
                answer,
                batching::status_reason("Braze", answer, detail),
                n,
            );
        }
        if !message.is_empty() && message != "success" {
            // A fatal error Braze reported in a 2xx.
            return vec![
                Verdict::Permanent {
                    reason: format!("Braze answered {}: {message}", answer.status),
                };
                n
            ];
        }
        let mut verdicts = vec![Verdict::Delivered; n];
        let errors = body.get("errors").and_then(Value::as_array);
        if errors.is_none_or(|e| e.is_empty()) {
            return verdicts;
        }
        let owners = owners(request);
        for error in errors.into_iter().flatten() {
            let kind = batching::str_at(error, "type").unwrap_or("invalid object");
            let array = batching::str_at(error, "input_array").unwrap_or("");
            let index = error
                .get("index")
                .and_then(Value::as_u64)
                .and_then(|i| usize::try_from(i).ok());
            let owner = index.and_then(|i| owners.iter().find(|(a, o, _)| *a == array && *o == i));
            match owner {
                Some(&(_, _, position)) => {
                    verdicts[position] = Verdict::Permanent {
                        reason: format!("Braze rejected {array}[{}]: {kind}", index.unwrap_or(0)),
                    };
                }
                None => {
                    // Not attributable: fail every event of that array rather than lose the error.
                    for &(a, _, position) in owners.iter().filter(|(a, _, _)| *a == array) {
                        verdicts[position] = Verdict::Permanent {
                            reason: format!("Braze rejected an object of {a}: {kind}"),
                        };
                    }
                }
            }
        }
        verdicts
    }
}

/// For each object of the request body: `(array, index in it, position in request.events)`.
fn owners(request: &HttpRequest) -> Vec<(&'static str, usize, usize)> {
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let len = |k: &str| body.get(k).and_then(Value::as_array).map_or(0, Vec::len);
    let (attrs, evs) = (len("attributes"), len("events"));
    let mut out = Vec::new();
    for i in 0..attrs {
        out.push(("attributes", i, i));
    }
    for i in 0..evs {
        out.push(("events", i, attrs + i));
    }
    let purchases = body.get("purchases").and_then(Value::as_array);
    let key = |p: &Value| {
        let mut id = p.as_object().cloned().unwrap_or_default();
        id.retain(|k, _| {
            matches!(
                k.as_str(),
                "external_id" | "user_alias" | "_update_existing_only"
            )
        });
        (Value::from(id).to_string(), p.get("time").cloned())
    };
    let mut position = attrs + evs;
    let mut previous = None;
    for (i, p) in purchases.into_iter().flatten().enumerate() {
        let k = key(p);
        if previous.as_ref().is_some_and(|prev| *prev != k) {
            position += 1;
        }
        previous = Some(k);
        out.push(("purchases", i, position));
    }
    out.retain(|&(_, _, position)| position < request.events.len());
    out
}

impl Braze {
    /// `/users/delete` for `user_id` (an `external_id`).
    pub fn delete_request(config: &BrazeConfig, user_id: &str) -> Result<HttpRequest, BrazeError> {
        if user_id.trim().is_empty() {
            return Err(BrazeError::EmptyUserId);
        }
        Ok(HttpRequest {
            method: "POST",
            url: format!(
                "{}/users/delete",
                config.rest_endpoint.trim_end_matches('/')
            ),
            headers: headers(&[
                ("Content-Type", "application/json"),
                ("Authorization", &format!("Bearer {}", config.rest_api_key)),
            ]),
            body: to_bytes(&json!({ "external_ids": [user_id] })),
            events: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_audience_change_is_an_attributes_object_with_its_flag() {
        let config: BrazeConfig = serde_json::from_value(
            json!({"rest_api_key": "key", "rest_endpoint": "https://rest.fra-01.braze.eu"}),
        )
        .unwrap();
        let events: Vec<Event> = serde_json::from_value(json!([
            {"type": "track", "messageId": "aud-1", "userId": "user-1", "event": "Audience Entered",
             "properties": {"audience": "vip", "traits": {"views": 3}}},
            {"type": "track", "messageId": "aud-2", "anonymousId": "device-1", "event": "Audience Exited",
             "properties": {"audience": "vip"}},
        ]))
        .unwrap();
        let encoded = Braze::encode(&config, &events, 0);
        assert!(encoded.skipped.is_empty(), "{:?}", encoded.skipped);
        assert_eq!(encoded.requests.len(), 1);
        assert_eq!(
            encoded.requests[0].url,
            "https://rest.fra-01.braze.eu/users/track"
        );
        let body: Value = serde_json::from_slice(&encoded.requests[0].body).unwrap();
        assert_eq!(
            body,
            json!({"attributes": [
                {"external_id": "user-1", "vip": true},
                {"user_alias": {"alias_name": "device-1", "alias_label": "anonymous_id"},
                 "_update_existing_only": false, "vip": false}
            ]})
        );
    }
}
