//! The identity graph and profiles, as SQL over D1: anonymousIds linked to
//! userIds, one profile per user (first/last seen, traits), consent history.
//!
//! A user's first and last sighting are those of their links, so an event
//! with an anonymousId writes (at most) its link and a `profiles` row is kept
//! only for a user seen without one (a server-side source); the profile read
//! model takes the earliest and latest over both (`privacy::profile`). A new
//! signed-in visitor is one row written, not two.
//!
//! Every statement is idempotent (running it again changes nothing), and all
//! but one are upserts whose result does not depend on their order: times
//! are merged with MIN/MAX, a trait keeps the value of the latest event (ties
//! broken by messageId). The exception is an identify's consent, recorded
//! only when it differs from the record before it: the D1 sink runs a batch's
//! statements in event-time order for it.

use crate::db::{opt_text, text_value, SqlValue, Statement};
use serde_json::Value;
use sluice_shared::{Event, EventType};

// D1 bills rows written, and a logged-in visitor's every event would rewrite
// their link and profile rows: an existing row is only rewritten when it moves
// (an earlier first sighting, or a last sighting in a later hour), so
// `last_seen` is exact to the hour and most events write neither row. A trait
// sent again with the same value is rewritten at most once an hour too (its
// `at` is then exact to the hour).
const LINK: &str = "INSERT INTO identity_links (anonymous_id, user_id, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3) \
     ON CONFLICT (anonymous_id, user_id) DO UPDATE SET first_seen = MIN(first_seen, excluded.first_seen), last_seen = MAX(last_seen, excluded.last_seen) \
     WHERE excluded.first_seen < identity_links.first_seen OR substr(excluded.last_seen, 1, 13) > substr(identity_links.last_seen, 1, 13)";
const PROFILE: &str = "INSERT INTO profiles (user_id, first_seen, last_seen) VALUES (?1, ?2, ?2) \
     ON CONFLICT (user_id) DO UPDATE SET first_seen = MIN(first_seen, excluded.first_seen), last_seen = MAX(last_seen, excluded.last_seen) \
     WHERE excluded.first_seen < profiles.first_seen OR substr(excluded.last_seen, 1, 13) > substr(profiles.last_seen, 1, 13)";
const TRAIT: &str = "INSERT INTO profile_traits (user_id, trait, value, at, message_id) VALUES (?1, ?2, ?3, ?4, ?5) \
     ON CONFLICT (user_id, trait) DO UPDATE SET value = excluded.value, at = excluded.at, message_id = excluded.message_id \
     WHERE (excluded.at > profile_traits.at OR (excluded.at = profile_traits.at AND excluded.message_id > profile_traits.message_id)) \
     AND (excluded.value IS NOT profile_traits.value OR substr(excluded.at, 1, 13) > substr(profile_traits.at, 1, 13))";
const CONSENT: &str = "INSERT INTO consent_events (message_id, anonymous_id, user_id, at, consent) VALUES (?1, ?2, ?3, ?4, ?5) \
     ON CONFLICT (message_id) DO NOTHING";
// An identify carries the visitor's consent as it stands, on every page a
// signed-in visitor loads: it is recorded only when it differs from the
// visitor's latest record at or before it (so the history keeps each change,
// not one row per identify). An explicit `Consent Updated` is always recorded.
// The lookup reads the visitor's records by `consent_events_visitor`.
const CONSENT_SNAPSHOT: &str = "INSERT INTO consent_events (message_id, anonymous_id, user_id, at, consent) \
     SELECT ?1, ?2, ?3, ?4, ?5 WHERE ?5 IS NOT (SELECT consent FROM consent_events \
     WHERE anonymous_id IS ?2 AND user_id IS ?3 AND at <= ?4 ORDER BY at DESC, message_id DESC LIMIT 1) \
     ON CONFLICT (message_id) DO NOTHING";

/// When an event happened, as the identity graph records it.
pub fn at(e: &Event) -> &str {
    e.timestamp
        .as_deref()
        .or(e.received_at.as_deref())
        .unwrap_or_default()
}

/// The identity statements for one stored event.
pub fn statements(e: &Event) -> Vec<Statement> {
    let at = at(e).to_owned();
    let mut out = Vec::new();
    if let Some(user) = &e.user_id {
        out.push(match &e.anonymous_id {
            Some(anon) => Statement::new(
                LINK,
                vec![text_value(anon), text_value(user), text_value(&at)],
            ),
            None => Statement::new(PROFILE, vec![text_value(user), text_value(&at)]),
        });
        if e.kind == EventType::Alias {
            if let Some(previous) = &e.previous_id {
                out.push(Statement::new(
                    LINK,
                    vec![text_value(previous), text_value(user), text_value(&at)],
                ));
            }
        }
        let traits = e.traits.as_ref().or_else(|| {
            e.context
                .as_ref()
                .and_then(|c| c.get("traits"))
                .and_then(Value::as_object)
        });
        if e.kind == EventType::Identify {
            for (name, value) in traits.into_iter().flatten() {
                out.push(Statement::new(
                    TRAIT,
                    vec![
                        text_value(user),
                        text_value(name),
                        SqlValue::Text(value.to_string()),
                        text_value(&at),
                        text_value(&e.message_id),
                    ],
                ));
            }
        }
    }
    let is_consent_change =
        e.kind == EventType::Track && e.event.as_deref() == Some("Consent Updated");
    if is_consent_change || e.kind == EventType::Identify {
        if let Some(consent) = e.context.as_ref().and_then(|c| c.get("consent")) {
            out.push(Statement::new(
                if is_consent_change {
                    CONSENT
                } else {
                    CONSENT_SNAPSHOT
                },
                vec![
                    text_value(&e.message_id),
                    opt_text(e.anonymous_id.as_deref()),
                    opt_text(e.user_id.as_deref()),
                    text_value(&at),
                    SqlValue::Text(consent.to_string()),
                ],
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identify_links_the_device_and_records_traits_and_consent() {
        let mut e = Event::new(EventType::Identify, "m1");
        e.user_id = Some("u1".into());
        e.anonymous_id = Some("a1".into());
        e.timestamp = Some("2024-05-01T10:00:00.000Z".into());
        e.traits = Some(
            serde_json::json!({"email": "x@y.z", "plan": "pro"})
                .as_object()
                .cloned()
                .unwrap(),
        );
        e.context = Some(
            serde_json::json!({"consent": {"categories": {"analytics": "granted"}}})
                .as_object()
                .cloned()
                .unwrap(),
        );
        let s = statements(&e);
        let kinds: Vec<&str> = s
            .iter()
            .map(|s| s.sql.split_whitespace().nth(2).unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "identity_links",
                "profile_traits",
                "profile_traits",
                "consent_events"
            ]
        );
        assert_eq!(
            s[1].params[2],
            SqlValue::Text("\"x@y.z\"".into()),
            "trait values are stored as JSON"
        );
    }

    #[test]
    fn a_user_seen_without_an_anonymous_id_keeps_a_profile_row() {
        let mut e = Event::new(EventType::Track, "m1");
        e.user_id = Some("u1".into());
        let s = statements(&e);
        assert_eq!(s.len(), 1);
        assert!(s[0].sql.starts_with("INSERT INTO profiles"), "{}", s[0].sql);
    }

    #[test]
    fn anonymous_events_touch_no_profile() {
        let mut e = Event::new(EventType::Track, "m1");
        e.anonymous_id = Some("a1".into());
        assert!(statements(&e).is_empty());
    }
}
