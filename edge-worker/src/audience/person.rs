//! What a person's Durable Object decides, apart from its storage: each
//! request (or alarm) is a [`step`] from the stored [`Record`] to the next
//! one, with the answer, the `Audience Entered` / `Audience Exited` events
//! to emit and when to wake up next.
//!
//! A person is keyed `u:<userId>`, or `a:<anonymousId>` before identify.
//! When identify links a device, the device's object hands its state over
//! ([`PersonRequest::Take`]) and keeps only a forward to the user's object,
//! so events still on their way for the device land in the one state.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sluice_shared::audience::state::Detail;
use sluice_shared::audience::{self, Catalog, Change, PersonState, View};
use sluice_shared::consent::Regime;
use sluice_shared::{Event, EventType, Timestamp};

/// Devices a person's object remembers having merged.
pub const MAX_DEVICES: usize = 32;

/// One event fed to a person, with the source it came from and its consent regime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fed {
    pub source: String,
    pub regime: Regime,
    pub event: Event,
}

/// A request to a person's object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum PersonRequest {
    /// Feed these events; `devices` are the anonymous ids seen with the
    /// user id (the answer names those not merged yet).
    Apply {
        events: Vec<Fed>,
        #[serde(default)]
        devices: Vec<String>,
    },
    /// Hand the state over to `into` and forward to it from now on.
    Take { into: String },
    /// Fold a device's handed-over record in.
    Merge { device: String, record: Box<Record> },
    /// The state with change times (the profile API).
    Read,
    /// Forget the person (a deletion).
    Delete,
    /// Fold the person's events of one backfill step in (`super::backfill`).
    Backfill {
        step: Box<audience::backfill::Step>,
        events: Vec<Fed>,
    },
}

/// What a person's object answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PersonAnswer {
    /// The browser-visible audiences and traits, after the request.
    pub view: View,
    /// Whether the object held a state before the request.
    pub existed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Detail>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_devices: Vec<String>,
    /// This device belongs to another person's object now: send there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taken: Option<Box<Record>>,
    /// Rows the object's storage read and wrote for this request, as the
    /// platform bills them (the cost meter adds them up).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rows_read: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rows_written: u64,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if signature
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a person's object stores.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    #[serde(rename = "st")]
    pub state: PersonState,
    /// The source and consent of the latest event (emitted events carry them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
    /// The backfill jobs that fed this person, and the last step of each.
    #[serde(default, rename = "bf", skip_serializing_if = "Vec::is_empty")]
    pub backfills: Vec<audience::backfill::Mark>,
}

impl Record {
    /// Worth storing: a state, or a forward.
    pub fn is_kept(&self) -> bool {
        !self.state.is_empty() || self.merged_into.is_some()
    }
}

/// The outcome of one request or alarm.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub answer: PersonAnswer,
    /// What to store; `None`: delete everything.
    pub record: Option<Record>,
    /// Events to put on the events Queue, with their source.
    pub emit: Vec<(String, Event)>,
    /// When the next window exit falls (epoch ms).
    pub alarm_at: Option<i64>,
}

/// The `Audience Entered` / `Audience Exited` event for a change, with an id
/// derived from the person, audience, direction and time (a retried alarm
/// emits the same id, which dedup then drops).
pub fn change_event(key: &str, change: &Change, consent: Option<&Value>) -> Event {
    let name = if change.entered {
        audience::ENTERED
    } else {
        audience::EXITED
    };
    let fp = audience::definition::fnv64(
        [
            key,
            "\n",
            &change.audience,
            "\n",
            name,
            "\n",
            &change.at_ms.to_string(),
        ]
        .concat()
        .as_bytes(),
    );
    let mut e = Event::new(EventType::Track, format!("aud-{fp:016x}"));
    match key.split_once(':') {
        Some(("u", id)) => e.user_id = Some(id.to_owned()),
        Some((_, id)) => e.anonymous_id = Some(id.to_owned()),
        None => e.anonymous_id = Some(key.to_owned()),
    }
    e.event = Some(name.to_owned());
    e.properties = json!({"audience": change.audience, "traits": change.traits})
        .as_object()
        .cloned();
    let at = Timestamp(change.at_ms).to_rfc3339();
    e.timestamp = Some(at.clone());
    e.received_at = Some(at);
    let mut context = serde_json::Map::new();
    if let Some(c) = consent {
        context.insert("consent".into(), c.clone());
    }
    context.insert(
        "library".into(),
        json!({"name": "sluice-audiences", "version": env!("CARGO_PKG_VERSION")}),
    );
    e.context = Some(context);
    e
}

fn finish(
    key: &str,
    mut record: Record,
    catalog: &Catalog,
    now_ms: i64,
    mut answer: PersonAnswer,
) -> Step {
    let changes = record.state.evaluate(catalog, now_ms);
    let emit = match &record.source {
        Some(source) => changes
            .iter()
            .map(|c| {
                (
                    source.clone(),
                    change_event(key, c, record.consent.as_ref()),
                )
            })
            .collect(),
        None => Vec::new(),
    };
    answer.view = record.state.view(catalog, true);
    let alarm_at = record.state.next_expiry(catalog);
    Step {
        answer,
        alarm_at,
        emit,
        record: record.is_kept().then_some(record),
    }
}

/// One request to the person `key`, whose object stores `stored`.
pub fn step(
    key: &str,
    stored: Option<Record>,
    request: PersonRequest,
    catalog: &Catalog,
    now_ms: i64,
) -> Step {
    let existed = stored.as_ref().is_some_and(Record::is_kept);
    let mut record = stored.unwrap_or_default();
    let mut answer = PersonAnswer {
        existed,
        ..PersonAnswer::default()
    };
    if let Some(target) = record.merged_into.clone() {
        if !matches!(request, PersonRequest::Delete) {
            answer.forward = Some(target);
            return Step {
                answer,
                record: Some(record),
                emit: Vec::new(),
                alarm_at: None,
            };
        }
    }
    match request {
        PersonRequest::Apply { events, devices } => {
            for fed in events {
                if record.state.apply(catalog, &fed.event, fed.regime, now_ms) {
                    record.source = Some(fed.source);
                    record.consent = fed
                        .event
                        .context
                        .as_ref()
                        .and_then(|c| c.get("consent"))
                        .cloned();
                }
            }
            answer.missing_devices = devices
                .into_iter()
                .filter(|d| !record.devices.contains(d))
                .collect();
            answer.missing_devices.dedup();
            finish(key, record, catalog, now_ms, answer)
        }
        PersonRequest::Merge {
            device,
            record: theirs,
        } => {
            record.state.merge(catalog, theirs.state);
            for d in std::iter::once(device).chain(theirs.devices) {
                if !record.devices.contains(&d) && record.devices.len() < MAX_DEVICES {
                    record.devices.push(d);
                }
            }
            if record.source.is_none() {
                record.source = theirs.source;
                record.consent = theirs.consent;
            }
            finish(key, record, catalog, now_ms, answer)
        }
        PersonRequest::Take { into } => {
            if existed {
                answer.taken = Some(Box::new(record));
                Step {
                    answer,
                    record: Some(Record {
                        merged_into: Some(into),
                        ..Record::default()
                    }),
                    emit: Vec::new(),
                    alarm_at: None,
                }
            } else {
                Step {
                    answer,
                    record: None,
                    emit: Vec::new(),
                    alarm_at: None,
                }
            }
        }
        PersonRequest::Read => {
            answer.detail = existed.then(|| record.state.detail());
            finish(key, record, catalog, now_ms, answer)
        }
        PersonRequest::Backfill { step, events } => {
            let person = audience::backfill::Person {
                state: &mut record.state,
                marks: &mut record.backfills,
                source: &mut record.source,
                consent: &mut record.consent,
            };
            let events = events
                .into_iter()
                .map(|f| (f.source, f.event, f.regime))
                .collect();
            audience::backfill::apply_to(person, catalog, &step, events, now_ms);
            finish(key, record, catalog, now_ms, answer)
        }
        PersonRequest::Delete => Step {
            answer,
            record: None,
            emit: Vec::new(),
            alarm_at: None,
        },
    }
}

/// The alarm: bring the state to `now` (window exits) and emit the changes.
pub fn tick(key: &str, stored: Option<Record>, catalog: &Catalog, now_ms: i64) -> Step {
    match stored {
        Some(record) if record.merged_into.is_none() => {
            finish(key, record, catalog, now_ms, PersonAnswer::default())
        }
        other => Step {
            answer: PersonAnswer::default(),
            record: other,
            emit: Vec::new(),
            alarm_at: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_780_000_000_000;

    fn catalog() -> Catalog {
        Catalog::parse(Some(
            &json!({"audiences": [{"name": "viewers", "purposes": ["personalization"], "browser_visible": true,
                "when": {"did": {"event": "Product Viewed", "times": 2, "within_s": 60}}}]})
            .to_string(),
        ))
        .unwrap()
    }

    fn fed(id: &str, at: i64, anon: &str) -> Fed {
        let mut e = Event::new(EventType::Track, id);
        e.event = Some("Product Viewed".into());
        e.anonymous_id = Some(anon.into());
        e.timestamp = Some(Timestamp(at).to_rfc3339());
        e.context = json!({"consent": {"categories": {"personalization": "granted"}}})
            .as_object()
            .cloned();
        Fed {
            source: "web".into(),
            regime: Regime::OptIn,
            event: e,
        }
    }

    fn apply(key: &str, stored: Option<Record>, events: Vec<Fed>, now: i64) -> Step {
        step(
            key,
            stored,
            PersonRequest::Apply {
                events,
                devices: vec![],
            },
            &catalog(),
            now,
        )
    }

    #[test]
    fn entering_emits_an_event_and_the_alarm_is_set_at_the_exit() {
        let c = catalog();
        let s1 = apply("a:d1", None, vec![fed("m1", T0, "d1")], T0);
        assert!(s1.emit.is_empty());
        let s2 = apply(
            "a:d1",
            s1.record,
            vec![fed("m2", T0 + 1000, "d1")],
            T0 + 1000,
        );
        assert_eq!(s2.answer.view.audiences, ["viewers"]);
        assert_eq!(s2.alarm_at, Some(T0 + 60_000));
        let (source, entered) = &s2.emit[0];
        assert_eq!(
            (source.as_str(), entered.event.as_deref()),
            ("web", Some(audience::ENTERED))
        );
        assert_eq!(entered.anonymous_id.as_deref(), Some("d1"));
        assert_eq!(entered.properties.as_ref().unwrap()["audience"], "viewers");
        assert!(
            entered.context.as_ref().unwrap().contains_key("consent"),
            "the consent travels on"
        );
        let early = tick("a:d1", s2.record.clone(), &c, T0 + 59_999);
        assert!(early.emit.is_empty());
        let exit = tick("a:d1", s2.record, &c, T0 + 60_000);
        assert_eq!(exit.emit[0].1.event.as_deref(), Some(audience::EXITED));
        assert_eq!(exit.emit[0].1.user_id, None);
        let again = tick("a:d1", exit.record.clone(), &c, T0 + 60_000);
        assert!(again.emit.is_empty(), "an exit is emitted once");
    }

    #[test]
    fn a_device_hands_over_and_forwards_to_the_user() {
        let c = catalog();
        let device = apply("a:d1", None, vec![fed("m1", T0, "d1")], T0);
        let mut user_event = fed("m2", T0 + 1, "d1");
        user_event.event.user_id = Some("u1".into());
        let user = step(
            "u:u1",
            None,
            PersonRequest::Apply {
                events: vec![user_event],
                devices: vec!["d1".into()],
            },
            &c,
            T0 + 1,
        );
        assert_eq!(user.answer.missing_devices, ["d1"]);
        let taken = step(
            "a:d1",
            device.record,
            PersonRequest::Take {
                into: "u:u1".into(),
            },
            &c,
            T0 + 2,
        );
        let record = taken.answer.taken.clone().unwrap();
        let merged = step(
            "u:u1",
            user.record,
            PersonRequest::Merge {
                device: "d1".into(),
                record,
            },
            &c,
            T0 + 2,
        );
        assert_eq!(
            merged.answer.view.audiences,
            ["viewers"],
            "two views across two devices"
        );
        assert_eq!(merged.emit[0].1.user_id.as_deref(), Some("u1"));
        let late = apply("a:d1", taken.record, vec![fed("m3", T0 + 3, "d1")], T0 + 3);
        assert_eq!(late.answer.forward.as_deref(), Some("u:u1"));
        let again = step(
            "u:u1",
            merged.record,
            PersonRequest::Apply {
                events: vec![],
                devices: vec!["d1".into()],
            },
            &c,
            T0 + 4,
        );
        assert!(again.answer.missing_devices.is_empty(), "merged once");
    }

    #[test]
    fn nothing_is_stored_for_a_person_without_consent_and_delete_forgets() {
        let mut refused = fed("m1", T0, "d1");
        refused.event.context = json!({"consent": {"categories": {"personalization": "denied"}}})
            .as_object()
            .cloned();
        let s = apply("a:d1", None, vec![refused], T0);
        assert_eq!(s.record, None);
        assert!(s.emit.is_empty());
        let kept = apply("a:d1", None, vec![fed("m2", T0, "d1")], T0);
        assert!(kept.record.is_some());
        let gone = step("a:d1", kept.record, PersonRequest::Delete, &catalog(), T0);
        assert!(gone.answer.existed);
        assert_eq!(gone.record, None);
    }
}
