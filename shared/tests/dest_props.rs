//! Property tests of the vendor destinations: normalising is idempotent,
//! hashes are always SHA-256 hex, packing keeps every event once and in
//! order within the limits, and encoding any event never panics, accounts
//! for every event exactly once and builds only requests of the vendor's
//! documented shape.
#![cfg(all(feature = "dest", not(target_arch = "wasm32")))]
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use proptest::prelude::*;
use serde_json::{json, Value};
use sluice_shared::dest::batching::{pack, Framing};
use sluice_shared::dest::ga4::Ga4;
use sluice_shared::dest::google_ads::GoogleAds;
use sluice_shared::dest::identifiers::{hashed, is_sha256_hex, normalize, Kind, Rules, Vendor};
use sluice_shared::dest::meta::Meta;
use sluice_shared::dest::tiktok::TikTok;
use sluice_shared::dest::{shape, Destination, Limits};
use sluice_shared::Event;

const KINDS: [Kind; 11] = [
    Kind::Email,
    Kind::Phone,
    Kind::FirstName,
    Kind::LastName,
    Kind::City,
    Kind::State,
    Kind::Zip,
    Kind::Country,
    Kind::Gender,
    Kind::DateOfBirth,
    Kind::ExternalId,
];

fn rules(vendor: u8) -> Rules<'static> {
    Rules {
        vendor: match vendor % 3 {
            0 => Vendor::Meta,
            1 => Vendor::Google,
            _ => Vendor::TikTok,
        },
        default_calling_code: Some("1"),
    }
}

fn raw_value() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,24}",
        "[A-Za-z .'-]{1,20}@[A-Za-z.]{1,12}\\.(com|org)",
        "\\+?[0-9 ()-]{7,18}",
        "[A-Za-z ]{1,20}",
        "(19|20)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])",
    ]
}

proptest! {
    #[test]
    fn normalising_twice_changes_nothing(kind in 0usize..11, raw in raw_value(), vendor in 0u8..3) {
        let (kind, rules) = (KINDS[kind], rules(vendor));
        if let Ok(once) = normalize(kind, &raw, rules) {
            // A Meta phone has no '+' and reads as a national number again: skip it.
            if !(kind == Kind::Phone && rules.vendor == Vendor::Meta) {
                prop_assert_eq!(normalize(kind, &once, rules), Ok(once.clone()));
            }
        }
    }

    #[test]
    fn hashes_are_sha256_hex_and_never_the_raw_value(kind in 0usize..11, raw in raw_value(), vendor in 0u8..3) {
        if let Ok(h) = hashed(KINDS[kind], &raw, rules(vendor)) {
            prop_assert!(is_sha256_hex(&h) && h == h.to_ascii_lowercase());
            if !is_sha256_hex(raw.trim()) {
                prop_assert_ne!(h.as_str(), raw.trim());
            }
        }
    }

    #[test]
    fn packing_keeps_every_event_once_in_order_within_the_limits(
        sizes in prop::collection::vec(0usize..40, 0..60),
        max_events in 1usize..10,
        max_bytes in 4usize..120,
    ) {
        let items: Vec<(usize, Vec<u8>)> = sizes
            .iter()
            .enumerate()
            .map(|(i, n)| (i, serde_json::to_vec(&"x".repeat(*n)).unwrap()))
            .collect();
        let limits = Limits { max_events, max_bytes };
        let packed = pack(Framing::ARRAY, &items, limits);
        let mut seen: Vec<usize> = packed.bodies.iter().flat_map(|(_, e)| e.clone()).collect();
        let too_large: Vec<usize> = packed.too_large.iter().map(|(i, _)| *i).collect();
        for (body, events) in &packed.bodies {
            prop_assert!(body.len() <= max_bytes && events.len() <= max_events && !events.is_empty());
            let parsed: Vec<String> = serde_json::from_slice(body).unwrap();
            prop_assert_eq!(parsed.len(), events.len());
        }
        prop_assert!(seen.windows(2).all(|w| w[0] < w[1]));
        for i in &too_large {
            prop_assert!(items[*i].1.len() + 2 > max_bytes);
        }
        seen.extend(too_large);
        seen.sort_unstable();
        prop_assert_eq!(seen, (0..sizes.len()).collect::<Vec<_>>());
    }

    #[test]
    fn encoding_any_event_accounts_for_it_once(events in prop::collection::vec(event(), 0..12)) {
        let now = 1_796_119_200_000; // 2026-12-01T10:00:00Z
        let meta = serde_json::from_value(json!({"pixel_id": "1", "access_token": "t"})).unwrap();
        let ga4 = serde_json::from_value(json!({"measurement_id": "G-1", "api_secret": "s"})).unwrap();
        let ads = serde_json::from_value(json!({"customer_id": "1", "developer_token": "d",
            "access_token": "a", "conversion_actions": {"Order Completed": "9", "Signed Up": "8"}})).unwrap();
        let tiktok = serde_json::from_value(json!({"pixel_code": "C", "access_token": "t"})).unwrap();
        accounted::<Meta>(&meta, &events, now)?;
        accounted::<Ga4>(&ga4, &events, now)?;
        accounted::<GoogleAds>(&ads, &events, now)?;
        accounted::<TikTok>(&tiktok, &events, now)?;
    }
}

fn accounted<D: Destination>(
    config: &D::Config,
    events: &[Event],
    now: i64,
) -> Result<(), TestCaseError> {
    let encoded = D::encode(config, events, now);
    let mut seen: Vec<usize> = encoded
        .requests
        .iter()
        .flat_map(|r| r.events.clone())
        .collect();
    for r in &encoded.requests {
        prop_assert!(r.events.len() <= D::limits(config).max_events);
        prop_assert!(serde_json::from_slice::<Value>(&r.body).is_ok());
        if let Err(violations) = shape::check(D::KIND, r, now) {
            return Err(TestCaseError::fail(format!("{}: {violations:?}", D::NAME)));
        }
    }
    seen.extend(encoded.skipped.iter().map(|(i, _)| *i));
    seen.sort_unstable();
    prop_assert_eq!(seen, (0..events.len()).collect::<Vec<_>>(), "{}", D::NAME);
    Ok(())
}

fn event() -> impl Strategy<Value = Event> {
    let kind = prop_oneof![
        Just("track"),
        Just("page"),
        Just("identify"),
        Just("screen")
    ];
    let name = prop_oneof![
        Just("Order Completed".to_owned()),
        Just("Product Added".to_owned()),
        Just("Signed Up".to_owned()),
        Just("Products Searched".to_owned()),
        ".{0,12}".prop_map(|s| s),
    ];
    let time = prop_oneof![
        Just(Some("2026-12-01T09:00:00Z".to_owned())),
        Just(Some("2026-09-01T09:00:00Z".to_owned())),
        Just(None),
        ".{0,10}".prop_map(Some),
    ];
    let text = || prop::option::of(".{0,16}");
    let email = prop::option::of(prop_oneof![
        "[A-Za-z0-9._]{1,10}@[a-z]{1,8}\\.(com|org)",
        ".{0,16}"
    ]);
    let phone = prop::option::of(prop_oneof!["\\+?[0-9 ()-]{8,16}", ".{0,12}"]);
    (
        kind,
        name,
        time,
        email,
        phone,
        text(),
        any::<bool>(),
        prop::option::of(-1e6f64..1e6),
    )
        .prop_map(
            |(kind, name, time, email, phone, id, integrations_off, revenue)| {
                serde_json::from_value(json!({
                "type": kind, "event": name, "messageId": "m", "anonymousId": id,
                "timestamp": time,
                "integrations": if integrations_off { json!({"All": false}) } else { json!({}) },
                "context": {"userAgent": "UA", "page": {"url": "https://x.test/"},
                    "campaign": {"clickIds": {"gclid": id, "ttclid": id}},
                    "traits": {"email": email, "phone": phone, "address": {"country": id}}},
                "properties": {"revenue": revenue, "currency": "USD", "order_id": id,
                    "products": [{"product_id": id, "price": revenue, "quantity": 2}]}
            }))
            .unwrap()
            },
        )
}
