//! The fast lane (`splice`) against the full decode: wherever the lane is
//! taken, the same event through the same pipeline (validation, clock skew,
//! enrichment, consent, anonymisation) encodes to the same JSON value. And it
//! is taken for what real clients send, so this is not vacuously true.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use proptest::prelude::*;
use serde_json::{json, Value};
use sluice_shared::consent::{self, Collect, Policy, Regime, WithoutConsent};
use sluice_shared::enrich::{self, ip::IpPolicy, Added, RequestFacts, Sent};
use sluice_shared::parse::{self, split_batch};
use sluice_shared::skew::{self, SkewRules};
use sluice_shared::{splice, Event, Limits, Timestamp};

mod strategies;
use strategies::json_value;

const NOW: Timestamp = Timestamp(1_714_557_900_000); // 2024-05-01T10:05:00Z
const SENT_AT: &str = "2024-05-01T10:04:59.000Z";

/// What the collector does to a valid event (`edge-worker/src/ingest.rs`'s
/// `process`, without a tracking plan): the encoded event, or why not. The
/// lane's pipeline keeps what it adds in `added` ([`Added::lane`]); off
/// the lane everything goes into the event.
#[derive(Debug, PartialEq)]
enum Outcome {
    Accepted {
        json: Value,
        warnings: Vec<&'static str>,
    },
    Dropped(&'static str),
    Rejected,
}

struct Setup {
    facts: RequestFacts,
    policy: Policy,
}

fn setups() -> Vec<Setup> {
    let facts = |ua: Option<&str>, gpc: bool| RequestFacts {
        ip: Some("203.0.113.7".parse().unwrap()),
        user_agent: ua.map(str::to_owned),
        gpc,
        ..RequestFacts::default()
    };
    let policy = |regime, without_consent| Policy {
        regime,
        without_consent,
        ..Policy::default()
    };
    vec![
        Setup {
            facts: facts(Some("bench"), false),
            policy: policy(Regime::OptOut, WithoutConsent::Drop),
        },
        Setup {
            facts: facts(Some("Googlebot/2.1"), true),
            policy: policy(Regime::OptIn, WithoutConsent::Anonymize),
        },
        Setup {
            facts: facts(None, false),
            policy: policy(Regime::OptIn, WithoutConsent::Drop),
        },
    ]
}

fn pipeline(
    event: Event,
    bytes: usize,
    setup: &Setup,
    lane: (Added, Option<&Sent<'_>>),
    encode: impl Fn(&Event, &Added) -> String,
) -> Outcome {
    match run(event, bytes, setup, lane) {
        Ok((event, added, warnings)) => Outcome::Accepted {
            json: serde_json::from_str(&encode(&event, &added)).unwrap(),
            warnings,
        },
        Err(outcome) => outcome,
    }
}

/// The pipeline up to encoding: the event, what was kept apart from it, the warnings.
fn run(
    mut event: Event,
    bytes: usize,
    setup: &Setup,
    (mut added, sent): (Added, Option<&Sent<'_>>),
) -> Result<(Event, Added, Vec<&'static str>), Outcome> {
    if event.sent_at.is_none() {
        event.sent_at = Some(SENT_AT.into());
    }
    let limits = Limits::default();
    let Ok(valid) = sluice_shared::validate::validate(event, bytes, &limits, NOW) else {
        return Err(Outcome::Rejected);
    };
    let warnings: Vec<&'static str> = valid.warnings().iter().map(|w| w.code()).collect();
    let mut event = valid.into_event();
    event.normalize_ids();
    let note = skew::apply(&mut event, NOW, SkewRules::default());
    let enriched = enrich::enrich_to(
        &mut event,
        &mut added,
        sent,
        &setup.facts,
        IpPolicy::Truncate,
    );
    if enriched.bot.is_some() {
        enrich::note(&mut event, &mut added, "bot_seen", json!(true));
    }
    let read = enrich::consent_of_sent(&event, sent);
    match consent::collect(read.as_ref(), &setup.policy) {
        Collect::Drop => return Err(Outcome::Dropped("consent_required")),
        Collect::Anonymous => enrich::strip_identifiers_to(&mut event, &mut added),
        Collect::Full => {}
    }
    enrich::note_code(&mut event, &mut added, "skew", note.code());
    if !warnings.is_empty() {
        enrich::note(&mut event, &mut added, "warnings", json!(warnings));
    }
    Ok((event, added, warnings))
}

/// Both ways, for every setup: `Some(true)` if the lane was taken (and agreed).
fn compare(raw: &[u8]) -> bool {
    let limits = Limits::default();
    let Some((fast, passed)) = splice::decode(raw, &limits) else {
        return false;
    };
    for setup in setups() {
        let slot = parse::parse_event(0, raw, None);
        let full = match slot.result {
            Ok(event) => pipeline(
                event,
                raw.len(),
                &setup,
                (Added::off(), None),
                |e, added| {
                    assert_eq!(added.context(), [], "nothing is kept apart off the lane");
                    serde_json::to_string(e).unwrap()
                },
            ),
            Err(e) => panic!(
                "the lane took an event the full decode rejects ({e}): {}",
                String::from_utf8_lossy(raw)
            ),
        };
        let lane = (Added::lane(), Some(passed.sent()));
        let lane = pipeline(fast.clone(), raw.len(), &setup, lane, |e, added| {
            passed.encode(e, added).unwrap()
        });
        assert_eq!(lane, full, "{}", String::from_utf8_lossy(raw));
    }
    true
}

fn fixture_events(path: &str) -> Vec<Vec<u8>> {
    let full = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
    let body = std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
    match split_batch(&body, &Limits::default()) {
        Ok(split) => split.events.iter().map(|e| e.to_vec()).collect(),
        Err(_) => vec![body],
    }
}

/// The worker bench's event (`fixtures/bench_event.json`).
fn bench_event() -> Value {
    let mut e: Value = serde_json::from_str(include_str!("fixtures/bench_event.json"))
        .expect("the bench event fixture is JSON");
    e["messageId"] = json!("bench-1-1");
    e
}

#[test]
fn what_real_clients_send_takes_the_lane_and_encodes_the_same() {
    let mut events: Vec<Vec<u8>> = Vec::new();
    for path in [
        "tests/fixtures/analytics-js/batch.json",
        "tests/fixtures/analytics-js/track.json",
        "tests/fixtures/analytics-js/page.json",
        "tests/fixtures/analytics-js/identify.json",
        "tests/fixtures/rudderstack/beacon-batch.json",
        "tests/fixtures/rudderstack/track.json",
        "tests/fixtures/rudderstack/identify.json",
    ] {
        events.extend(fixture_events(path));
    }
    events.push(bench_event().to_string().into_bytes());
    // Single-event bodies carry no `type` (the path gives it): give them one.
    let events: Vec<Vec<u8>> = events
        .into_iter()
        .map(|raw| {
            let mut v: Value = serde_json::from_slice(&raw).unwrap();
            let o = v.as_object_mut().unwrap();
            o.remove("writeKey");
            o.entry("type").or_insert(json!("track"));
            if o["type"] == "track" {
                o.entry("event").or_insert(json!("Something"));
            }
            serde_json::to_vec(&v).unwrap()
        })
        .collect();
    let taken = events.iter().filter(|raw| compare(raw)).count();
    assert_eq!(taken, events.len(), "every fixture event takes the lane");
}

/// The comparisons above are of something: for what browsers send, the
/// lane's pipeline keeps enrichment's values and its notes out of the event.
#[test]
fn the_lane_keeps_what_the_pipeline_adds_apart_from_the_event() {
    let raw = bench_event().to_string();
    let (fast, passed) = splice::decode(raw.as_bytes(), &Limits::default()).unwrap();
    let sent = passed.sent();
    assert_eq!(sent.user_agent.as_deref(), Some("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"));
    assert_eq!(
        sent.referrer.as_deref(),
        Some("https://www.google.com/search?q=mug")
    );
    let setup = &setups()[0];
    let Ok((event, added, _)) = run(fast, raw.len(), setup, (Added::lane(), Some(sent))) else {
        panic!("the bench event is accepted");
    };
    let kept: Vec<&str> = added.context().iter().map(|(k, _)| *k).collect();
    assert_eq!(
        kept,
        ["browser", "campaign", "device", "ip", "os", "sluice"]
    );
    // Nothing the client sent in `context` is decoded (the pipeline only reads it).
    assert_eq!(event.context, Some(Default::default()));
    assert!(sent.consent.is_some());
}

/// The lane reads its bytes in one pass of its own (not `serde_json`'s):
/// JSON written in every other way a client may write it takes the lane
/// and reads as the full decode reads it.
#[test]
fn json_written_any_valid_way_takes_the_lane_and_reads_the_same() {
    let base = bench_event().to_string();
    let pretty = serde_json::to_string_pretty(&bench_event()).unwrap();
    let edit = |from: &str, to: &str| {
        assert!(base.contains(from), "{from}");
        base.replacen(from, to, 1)
    };
    for raw in [
        pretty.clone(),
        pretty.replace('\n', "\r\n").replace("  ", "\t"),
        edit("\"messageId\"", "\"messag\\u0065Id\""),
        edit("\"messageId\":\"bench-1-1\"", "\"messageId\":7"),
        edit("\"event\":\"Product Viewed\"", "\"event\":\"Product \\\"Viewed\\\"\\n\\u00e9\\ud83d\\ude00\\/\""),
        edit("\"anonymousId\"", "\"userId\":12345,\"anonymousId\""),
        edit("\"anonymousId\"", "\"userId\":null,\"name\":null,\"anonymousId\""),
        edit("\"properties\":{", "\"integrations\":{\"All\":false,\"x\":{\"a\":[1,2.5,-0.25,true,null]}},\"properties\":{"),
        edit("\"properties\":{", "\"traits\":{\"plan\":\"pro\",\"n\":[1,{\"b\":null}]},\"properties\":{"),
        edit("\"properties\":{", "\"channel\":\"web\",\"_metadata\":{\"bundled\":[\"x\"]},\"properties\":{"),
        edit("\"price\":12", "\"price\":-12.125,\"tags\":[],\"o\":{},\"s\":\"\\u0000\\t\""),
        edit("\"userAgent\":", "\"userAgent\":17,\"x-userAgent\":"),
        edit("\"url\":\"https:", "\"nested\":{\"url\":1},\"url\":\"https:\\/"),
        edit("\"title\":\"Blue Mug\"", "\"title\":\"Blue Mug\",\"referrer2\":null"),
        edit("\"library\"", "\"sluice\":{\"note\":1},\"library\""),
    ] {
        assert!(compare(raw.as_bytes()), "the lane is taken: {raw}");
    }
}

#[test]
fn the_fuzz_corpus_agrees_where_the_lane_is_taken() {
    let dir = format!("{}/fuzz/corpus/parse_batch", env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let body = std::fs::read(entry.unwrap().path()).unwrap();
        if let Ok(split) = split_batch(&body, &Limits::default()) {
            for raw in split.events {
                compare(raw);
                seen += 1;
            }
        }
    }
    assert!(seen > 10, "{seen}");
}

#[test]
fn what_the_lane_cannot_judge_goes_the_full_way() {
    let base = bench_event();
    let with = |path: &[&str], v: Value| {
        let mut e = base.clone();
        let mut at = &mut e;
        for p in &path[..path.len() - 1] {
            at = &mut at[*p];
        }
        at[path[path.len() - 1]] = v;
        e.to_string()
    };
    let deep = (0..20).fold(json!(1), |v, _| json!([v]));
    for raw in [
        with(&["properties"], json!("not an object")),
        with(&["properties", "deep"], deep.clone()),
        with(&["context", "library", "deep"], deep),
        with(&["properties", "long"], json!("x".repeat(20_000))),
        with(&["context"], json!([1])),
        with(&["messageId"], json!("")),
        with(&["type"], json!("launch")),
        base.to_string()
            .replacen("\"price\":12", "\"price\":1e400", 1),
        base.to_string()
            .replacen("\"price\":12", "\"price\":12345678901234567890123", 1),
        base.to_string()
            .replacen("\"sku\":\"MUG-001\"", "\"sku\":\"\\ud800\"", 1),
        base.to_string()
            .replacen("\"sku\":\"MUG-001\"", "\"sku\":\"\\udc00\"", 1),
        base.to_string()
            .replacen("\"sku\":\"MUG-001\"", "\"sku\":\"\\ud83d\\ude00\"", 1),
        base.to_string().replacen(
            "\"locale\":\"en-US\"",
            "\"locale\":\"en-US\",\"locale\":\"fr\"",
            1,
        ),
        base.to_string()
            .replacen("\"event\":", "\"event\":\"dup\",\"event\":", 1),
        base.to_string()
            .replacen("\"timestamp\"", "\"x\":1,\"x\":2,\"timestamp\"", 1),
    ] {
        assert!(
            splice::decode(raw.as_bytes(), &Limits::default()).is_none(),
            "{raw}"
        );
        compare(raw.as_bytes());
    }
}

#[test]
fn edge_cases_the_lane_takes_encode_the_same() {
    let base = bench_event();
    let mut cases = Vec::new();
    let mut add = |f: &dyn Fn(&mut Value)| {
        let mut e = base.clone();
        f(&mut e);
        cases.push(e.to_string());
    };
    add(&|e| e["context"] = Value::Null);
    add(&|e| {
        e.as_object_mut().unwrap().remove("context");
    });
    add(&|e| e["properties"] = Value::Null);
    add(&|e| e["integrations"] = json!({"All": true, "Mixpanel": {"x": [1, 2.5, -3]}}));
    add(&|e| e["context"]["userAgent"] = json!(42));
    add(&|e| {
        e["context"].as_object_mut().unwrap().remove("userAgent");
    });
    add(&|e| e["context"]["ip"] = json!("198.51.100.23"));
    add(&|e| e["context"]["sluice"] = json!({"client": "says", "consent": "x"}));
    add(&|e| e["context"]["os"] = json!({"name": ""}));
    add(&|e| e["context"]["device"] = json!({"id": "d1", "advertisingId": "a", "type": "tv"}));
    add(&|e| e["context"]["traits"] = json!({"email": "a@b.c"}));
    add(&|e| e["context"]["campaign"] = json!({"name": "spring"}));
    add(&|e| e["context"]["location"] = json!({"city": "Paris"}));
    add(&|e| e["context"]["consent"] = json!({"categories": {"analytics": "denied"}}));
    add(&|e| {
        e["context"].as_object_mut().unwrap().remove("consent");
    });
    add(&|e| e["context"]["page"] = json!("/not-an-object"));
    add(&|e| {
        e["context"]["page"] = json!({"url": 7, "referrer": null, "extra": {"a": [1, {"b": "c"}]}})
    });
    add(&|e| e["traits"] = json!({"plan": "pro", "n": {"deep": [1]}}));
    add(&|e| e["userId"] = json!(12345));
    add(&|e| e["userId"] = json!(""));
    add(&|e| e["sentAt"] = json!("2024-05-01T10:04:00.000Z"));
    add(&|e| e["timestamp"] = json!("1999-01-01T00:00:00.000Z"));
    add(&|e| e["channel"] = json!("web"));
    add(&|e| e["_metadata"] = json!({"bundled": ["Segment.io"]}));
    add(&|e| e["properties"]["text"] = json!("quote \" backslash \\ tab \t é 😀 \u{1}"));
    add(&|e| e["context"]["zz_last"] = json!({"after": "every decoded key"}));
    add(&|e| e["context"]["aa_first"] = json!(["before", "every", "key"]));
    cases.push(
        base.to_string()
            .replacen("\"locale\"", "\"loc\\u0061le\"", 1)
            .replacen("\"userAgent\"", " \n\"user\\u0041gent\" ", 1),
    );
    cases.push(serde_json::to_string_pretty(&base).unwrap());
    for raw in &cases {
        assert!(compare(raw.as_bytes()), "the lane takes {raw}");
    }
}

/// Keys the pipeline reads, among others.
fn context_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "page",
            "userAgent",
            "ip",
            "location",
            "os",
            "browser",
            "device",
            "campaign",
            "consent",
            "sluice",
            "traits",
            "sessionId",
            "device_id",
            "externalIds",
            "library",
            "locale",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z_]{1,10}",
    ]
}

proptest! {
    #[test]
    fn arbitrary_events_encode_the_same_either_way(
        kind in prop::sample::select(vec!["track", "page", "identify", "group", "alias", "screen"]),
        ids in prop::collection::vec(prop::option::of(prop_oneof![".{0,12}".prop_map(Value::from), any::<u32>().prop_map(Value::from)]), 4),
        properties in prop::option::of(json_value()),
        traits in prop::option::of(json_value()),
        context in prop::option::of(prop::collection::btree_map(context_key(), json_value(), 0..8)),
        page in prop::option::of(prop::collection::btree_map(prop::sample::select(vec!["url", "referrer", "path", "title"]), prop_oneof![".{0,30}".prop_map(Value::from), Just(json!("https://a.com/?utm_source=x&gclid=1")), json_value()], 0..4)),
        consent in prop::option::of(prop_oneof![Just(json!({"categories": {"analytics": "granted"}})), Just(json!({"categories": {"analytics": "denied"}})), json_value()]),
        extra in prop::option::of(json_value()),
    ) {
        let mut e = json!({"type": kind, "messageId": "m-1", "event": "E", "timestamp": "2024-05-01T10:00:00.000Z"});
        for (name, id) in ["anonymousId", "userId", "groupId", "previousId"].into_iter().zip(ids) {
            if let Some(id) = id {
                e[name] = id;
            }
        }
        if let Some(p) = properties { e["properties"] = p; }
        if let Some(t) = traits { e["traits"] = t; }
        if let Some(x) = extra { e["custom"] = x; }
        if let Some(c) = context {
            let mut c: serde_json::Map<String, Value> = c.into_iter().collect();
            if let Some(p) = page { c.insert("page".into(), Value::Object(p.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())); }
            if let Some(consent) = consent { c.insert("consent".into(), consent); }
            e["context"] = Value::Object(c);
        }
        compare(e.to_string().as_bytes());
    }
}
