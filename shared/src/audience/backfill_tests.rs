use super::*;
use crate::audience::Catalog;
use serde_json::json;

const MIN: i64 = 60_000;
const T0: i64 = 1_780_000_000_000;

fn catalog() -> Catalog {
    Catalog::parse(Some(
        &json!({
            "traits": [
                {"name": "revenue", "kind": "sum", "property": "revenue", "event": "Order Completed", "purposes": ["personalization"]},
                {"name": "views", "kind": "count", "event": "Product Viewed", "purposes": ["personalization"]},
                {"name": "views_1h", "kind": "count", "event": "Product Viewed", "window_s": 3600, "purposes": ["personalization"]}
            ],
            "audiences": [
                {"name": "big_spenders", "purposes": ["personalization"], "when": {"any": [
                    {"trait": {"name": "revenue", "op": "gte", "value": 500}},
                    {"profile": {"name": "plan", "op": "eq", "value": "vip"}}
                ]}},
                {"name": "viewers", "purposes": ["personalization"], "when":
                    {"did": {"event": "Product Viewed", "times": 2, "within_s": 3600}}}
            ]
        })
        .to_string(),
    ))
    .unwrap()
}

fn consent(personalization: bool) -> Value {
    let v = if personalization { "granted" } else { "denied" };
    json!({"consent": {"categories": {"personalization": v}}})
}

/// A product view received at `at` (its timestamp too).
fn view(id: &str, at: i64, granted: bool) -> Event {
    let mut e = Event::new(EventType::Track, id);
    e.event = Some("Product Viewed".into());
    e.timestamp = Some(Timestamp(at).to_rfc3339());
    e.received_at = e.timestamp.clone();
    e.context = consent(granted).as_object().cloned();
    e
}

fn history(n: i64, start: i64) -> Vec<(Event, Regime)> {
    let mut events: Vec<(Event, Regime)> = (0..n)
        .map(|i| (view(&format!("h{i}"), start + i * MIN, true), Regime::OptIn))
        .collect();
    newest_first(&mut events, |(e, _)| e);
    events
}

fn plan(c: &Catalog, names: &[&str], until: i64) -> Plan {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    Plan {
        selection: Selection::select(c, Some(&names)).unwrap(),
        from_ms: None,
        until_ms: until,
    }
}

fn step(job: &str, n: u32, plan: &Plan) -> Step {
    Step {
        job: job.into(),
        step: n,
        plan: plan.clone(),
    }
}

fn value(s: &mut PersonState, c: &Catalog, name: &str, now: i64) -> Value {
    s.evaluate(c, now);
    s.traits.get(name).map_or(Value::Null, |t| t.v.clone())
}

#[test]
fn a_redelivered_step_counts_nothing_twice() {
    let c = catalog();
    let p = plan(&c, &["views"], T0 + 2000 * MIN);
    let (mut s, mut marks) = (PersonState::default(), Vec::new());
    let events = history(1000, T0);
    let first = apply(
        &mut s,
        &mut marks,
        &c,
        &step("j1", 1, &p),
        &events,
        None,
        T0 + 2000 * MIN,
    );
    assert_eq!(
        first,
        Applied {
            repeated: false,
            counted: 1000
        }
    );
    let again = apply(
        &mut s,
        &mut marks,
        &c,
        &step("j1", 1, &p),
        &events,
        None,
        T0 + 2000 * MIN,
    );
    assert!(
        again.repeated,
        "a thousand events are far more than the 64 ids remembered"
    );
    assert_eq!(value(&mut s, &c, "views", T0 + 2000 * MIN), 1000);
    let older = history(5, T0 - 10 * MIN);
    let next = apply(
        &mut s,
        &mut marks,
        &c,
        &step("j1", 2, &p),
        &older,
        None,
        T0 + 2000 * MIN,
    );
    assert_eq!(next.counted, 5, "the next step counts");
    let stale = apply(
        &mut s,
        &mut marks,
        &c,
        &step("j1", 1, &p),
        &events,
        None,
        T0 + 2000 * MIN,
    );
    assert!(
        stale.repeated,
        "an earlier step delivered late does nothing"
    );
    assert_eq!(value(&mut s, &c, "views", T0 + 2000 * MIN), 1005);
}

#[test]
fn live_events_before_the_job_and_during_it_are_counted_once() {
    let c = catalog();
    let mut s = PersonState::default();
    // Live since the definition went live at T0 + 10 min: two views.
    for (id, at) in [("l1", T0 + 10 * MIN), ("l2", T0 + 11 * MIN)] {
        s.apply(&c, &view(id, at, true), Regime::OptIn, at);
    }
    assert_eq!(s.feeds["views"].b, Some(T0 + 10 * MIN));
    let until = T0 + 20 * MIN;
    let p = plan(&c, &["views"], until);
    // The lake holds the 10 older views, the two live ones, and one
    // received during the backfill (also fed live).
    let during = view("l3", until + MIN, true);
    s.apply(&c, &during, Regime::OptIn, until + MIN);
    let mut lake = history(10, T0);
    lake.push((view("l1", T0 + 10 * MIN, true), Regime::OptIn));
    lake.push((view("l2", T0 + 11 * MIN, true), Regime::OptIn));
    lake.push((during, Regime::OptIn));
    newest_first(&mut lake, |(e, _)| e);
    // The live ids are in the person's recent ids; forget them to show the cut alone holds.
    s.seen.clear();
    let mut marks = Vec::new();
    let done = apply(
        &mut s,
        &mut marks,
        &c,
        &step("j1", 1, &p),
        &lake,
        None,
        until + 2 * MIN,
    );
    assert_eq!(done.counted, 10);
    assert_eq!(value(&mut s, &c, "views", until + 2 * MIN), 13);
    assert_eq!(s.feeds["views"].b, None, "everything is counted now");
    // A second backfill of the same definition adds nothing.
    let mut marks = Vec::new();
    let p2 = plan(&c, &["views"], until + 5 * MIN);
    let twice = apply(
        &mut s,
        &mut marks,
        &c,
        &step("j2", 1, &p2),
        &lake,
        None,
        until + 5 * MIN,
    );
    assert_eq!(twice.counted, 0);
    assert_eq!(value(&mut s, &c, "views", until + 5 * MIN), 13);
}

#[test]
fn a_live_id_fed_after_the_cut_but_received_before_it_counts_once() {
    let c = catalog();
    let mut s = PersonState::default();
    let late = view("late", T0, true); // received at T0, fed live only at T0 + 30 min
    s.apply(
        &c,
        &view("l1", T0 + 20 * MIN, true),
        Regime::OptIn,
        T0 + 20 * MIN,
    );
    s.apply(&c, &late, Regime::OptIn, T0 + 30 * MIN);
    let p = plan(&c, &["views"], T0 + 40 * MIN);
    let lake = vec![(late, Regime::OptIn)];
    let done = apply(
        &mut s,
        &mut Vec::new(),
        &c,
        &step("j", 1, &p),
        &lake,
        None,
        T0 + 40 * MIN,
    );
    assert_eq!(done.counted, 0, "known by its messageId");
    assert_eq!(value(&mut s, &c, "views", T0 + 40 * MIN), 2);
}

#[test]
fn only_the_named_definitions_are_computed() {
    let c = catalog();
    let p = plan(&c, &["views"], T0 + 100 * MIN);
    let mut s = PersonState::default();
    apply(
        &mut s,
        &mut Vec::new(),
        &c,
        &step("j", 1, &p),
        &history(3, T0),
        None,
        T0 + 100 * MIN,
    );
    s.evaluate(&c, T0 + 100 * MIN);
    assert_eq!(s.traits.keys().collect::<Vec<_>>(), ["views"]);
    assert!(!s.feeds.contains_key("views_1h") && !s.feeds.contains_key("viewers#0"));
}

#[test]
fn the_latest_consent_governs_what_the_history_contributes() {
    let c = catalog();
    let p = plan(&c, &["views"], T0 + 100 * MIN);
    // Newest first: two views after a refusal, the refusal, three before it.
    let mut events = vec![
        (view("a", T0 + 6 * MIN, true), Regime::OptIn),
        (view("b", T0 + 5 * MIN, true), Regime::OptIn),
        (view("no", T0 + 4 * MIN, false), Regime::OptIn),
    ];
    events.extend(history(3, T0));
    let mut s = PersonState::default();
    let mut marks = Vec::new();
    apply(
        &mut s,
        &mut marks,
        &c,
        &step("j", 1, &p),
        &events[..2],
        None,
        T0 + 100 * MIN,
    );
    // The refusal and the older views come in the next step: still stopped.
    apply(
        &mut s,
        &mut marks,
        &c,
        &step("j", 2, &p),
        &events[2..],
        None,
        T0 + 100 * MIN,
    );
    assert_eq!(
        value(&mut s, &c, "views", T0 + 100 * MIN),
        2,
        "live feeding cleared the three before the refusal"
    );
    // A person whose latest live consent refuses gets nothing from the lake.
    let mut refused = PersonState::default();
    let no = Consent::from_context(consent(false).as_object()).unwrap();
    let latest = Latest {
        consent: no.as_ref(),
        regime: Regime::OptIn,
    };
    let done = apply(
        &mut refused,
        &mut Vec::new(),
        &c,
        &step("j", 1, &p),
        &history(3, T0),
        Some(latest),
        T0 + 100 * MIN,
    );
    assert_eq!(done.counted, 0);
    assert!(refused.is_empty());
}

#[test]
fn a_backfilled_window_expires_on_time() {
    let c = catalog();
    let p = plan(&c, &["viewers", "views_1h"], T0 + 30 * MIN);
    let mut s = PersonState::default();
    // Views at T0 .. T0 + 4 min; now T0 + 30 min: all within the hour.
    apply(
        &mut s,
        &mut Vec::new(),
        &c,
        &step("j", 1, &p),
        &history(5, T0),
        None,
        T0 + 30 * MIN,
    );
    let changes = s.evaluate(&c, T0 + 30 * MIN);
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.audience.as_str(), c.entered))
            .collect::<Vec<_>>(),
        [("viewers", true)]
    );
    assert_eq!(s.traits["views_1h"].v, 5);
    // `viewers` keeps the 2 newest (T0 + 3 and + 4 min): it leaves when the
    // second newest falls out, at T0 + 63 min; the trait's next exit is the oldest's.
    assert_eq!(s.next_expiry(&c), Some(T0 + 60 * MIN));
    assert_eq!(s.feeds["viewers#0"].win.len(), 2);
    let left = s.evaluate(&c, T0 + 63 * MIN);
    assert_eq!(
        left.iter()
            .map(|c| (c.audience.as_str(), c.entered))
            .collect::<Vec<_>>(),
        [("viewers", false)]
    );
    assert_eq!(s.traits["views_1h"].v, 1);
}

#[test]
fn an_audience_brings_the_traits_and_profile_traits_it_reads() {
    let c = catalog();
    let s = Selection::select(&c, Some(&["big_spenders".to_owned()])).unwrap();
    assert_eq!(
        s.feeds.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["revenue"]
    );
    assert_eq!(s.profile, ["plan"]);
    let p = Plan {
        selection: s,
        from_ms: None,
        until_ms: T0 + MIN,
    };
    let mut identify = Event::new(EventType::Identify, "i1");
    identify.user_id = Some("u".into());
    identify.traits = json!({"plan": "vip"}).as_object().cloned();
    identify.timestamp = Some(Timestamp(T0).to_rfc3339());
    identify.context = consent(true).as_object().cloned();
    let mut st = PersonState::default();
    apply(
        &mut st,
        &mut Vec::new(),
        &c,
        &step("j", 1, &p),
        &[(identify, Regime::OptIn)],
        None,
        T0 + MIN,
    );
    st.evaluate(&c, T0 + MIN);
    assert_eq!(st.view(&c, false).audiences, ["big_spenders"]);
}

#[test]
fn a_range_limits_what_is_counted_and_what_remains_to_backfill() {
    let c = catalog();
    let mut p = plan(&c, &["views"], T0 + 100 * MIN);
    p.from_ms = Some(T0 + 5 * MIN);
    let mut s = PersonState::default();
    apply(
        &mut s,
        &mut Vec::new(),
        &c,
        &step("j", 1, &p),
        &history(10, T0),
        None,
        T0 + 100 * MIN,
    );
    assert_eq!(value(&mut s, &c, "views", T0 + 100 * MIN), 5);
    assert_eq!(s.feeds["views"].b, Some(T0 + 5 * MIN));
    let all = plan(&c, &["views"], T0 + 100 * MIN);
    apply(
        &mut s,
        &mut Vec::new(),
        &c,
        &step("j2", 1, &all),
        &history(10, T0),
        None,
        T0 + 100 * MIN,
    );
    assert_eq!(
        value(&mut s, &c, "views", T0 + 100 * MIN),
        10,
        "the older five, once"
    );
}

#[test]
fn bad_requests_are_typed_errors() {
    let c = catalog();
    let parse =
        |body: Value| Plan::parse(body.to_string().as_bytes(), &c, T0).map_err(|e| e.code());
    assert_eq!(parse(json!({})), Err("backfill_without_definitions"));
    assert_eq!(
        parse(json!({"all": true, "definitions": ["views"]})),
        Err("backfill_without_definitions")
    );
    assert_eq!(
        parse(json!({"definitions": []})),
        Err("backfill_without_definitions")
    );
    assert_eq!(
        parse(json!({"definitions": ["nope"]})),
        Err("unknown_definition")
    );
    assert_eq!(
        parse(json!({"all": true, "from": "yesterday"})),
        Err("invalid_time")
    );
    assert_eq!(
        parse(
            json!({"all": true, "from": Timestamp(T0).to_rfc3339(), "until": Timestamp(T0 - 1).to_rfc3339()})
        ),
        Err("invalid_range")
    );
    assert_eq!(
        parse(json!({"all": true, "until": Timestamp(T0 + 1).to_rfc3339()})),
        Err("invalid_range")
    );
    assert_eq!(
        parse(json!({"all": true, "extra": 1})),
        Err("invalid_backfill")
    );
    let all = Plan::parse(br#"{"all": true}"#, &c, T0).unwrap();
    assert_eq!(all.until_ms, T0);
    assert_eq!(all.selection.definitions.len(), 5);
    let mut changed = c.clone();
    changed.feeds[1].fingerprint ^= 1;
    assert_eq!(
        all.selection.check(&changed).map_err(|e| e.code()),
        Err("definition_changed")
    );
    assert_eq!(all.selection.check(&c), Ok(()));
}

#[test]
fn statuses_round_trip() {
    for s in [
        Status::Queued,
        Status::Running,
        Status::Done,
        Status::Failed,
    ] {
        assert_eq!(Status::parse(s.as_str()), Some(s));
        assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
    }
    assert!(Status::Done.is_final() && !Status::Running.is_final());
}

#[test]
fn a_jobs_mark_stays_small_and_only_the_last_jobs_are_kept() {
    let c = catalog();
    let p = Plan::parse(br#"{"all": true}"#, &c, T0 + 100 * MIN).unwrap();
    let mut s = PersonState::default();
    let mut marks = Vec::new();
    for j in 0..6 {
        let job = format!("00000000-0000-4000-8000-00000000000{j}");
        apply(
            &mut s,
            &mut marks,
            &c,
            &step(&job, 7, &p),
            &history(3, T0),
            None,
            T0 + 100 * MIN,
        );
    }
    assert_eq!(marks.len(), MAX_MARKS);
    assert_eq!(
        marks[0].job, "00000000-0000-4000-8000-000000000002",
        "the oldest are forgotten"
    );
    // A uuid, the step, and the cuts that are not the job's `until`: the 3
    // feeds the first job completed (the 4th, revenue, had no event).
    let text = serde_json::to_string(&marks[0]).unwrap();
    assert_eq!(text.len(), 150, "{text}");
    assert_eq!(marks[0].cut.len(), 3);
    let mut first = Vec::new();
    apply(
        &mut PersonState::default(),
        &mut first,
        &c,
        &step("00000000-0000-4000-8000-000000000000", 0, &p),
        &history(3, T0),
        None,
        T0 + 100 * MIN,
    );
    assert_eq!(
        serde_json::to_string(&first[0]).unwrap().len(),
        50,
        "a first backfill: the id and step only"
    );
}

#[test]
fn a_person_never_fed_live_takes_the_newest_events_source_and_consent() {
    let c = catalog();
    let p = plan(&c, &["viewers"], T0 + 30 * MIN);
    let mut s = PersonState::default();
    let (mut marks, mut source, mut given) = (Vec::new(), None, None);
    let events = vec![
        ("web".to_owned(), view("a", T0, true), Regime::OptIn),
        ("app".to_owned(), view("b", T0 + MIN, true), Regime::OptIn),
    ];
    let person = Person {
        state: &mut s,
        marks: &mut marks,
        source: &mut source,
        consent: &mut given,
    };
    assert_eq!(
        apply_to(person, &c, &step("j", 0, &p), events, T0 + 30 * MIN).counted,
        2
    );
    assert_eq!(source.as_deref(), Some("app"), "the newest event's");
    assert_eq!(given, Some(consent(true)["consent"].clone()));
    assert_eq!(s.evaluate(&c, T0 + 30 * MIN)[0].audience, "viewers");
    // Live since, with a refusal: the history adds nothing and the audience stays withheld.
    let (mut s2, mut marks2) = (PersonState::default(), Vec::new());
    let (mut live, mut refused) = (
        Some("web".to_owned()),
        Some(consent(false)["consent"].clone()),
    );
    let person = Person {
        state: &mut s2,
        marks: &mut marks2,
        source: &mut live,
        consent: &mut refused,
    };
    let events = vec![("web".to_owned(), view("a", T0, true), Regime::OptIn)];
    assert_eq!(
        apply_to(person, &c, &step("j", 0, &p), events, T0 + 30 * MIN).counted,
        0
    );
    assert!(s2.is_empty());
}
