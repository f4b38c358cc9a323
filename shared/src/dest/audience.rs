//! Audience membership for the vendors that keep user profiles.
//!
//! Sluice's own `Audience Entered` / `Audience Exited` events (see
//! [`crate::audience`]) become a profile update where the vendor has one,
//! in the convention Segment's Engage uses for its audiences: one boolean
//! profile property named after the audience, `true` on entering and
//! `false` on leaving, so the vendor's own segmentation can read it.
//!
//! | vendor | the update |
//! | --- | --- |
//! | Mixpanel | `/engage` `{"$token", "$distinct_id": userId, "$set": {<audience>: bool}}` (profiles are per user: without a userId the event is imported as a track event, as before) |
//! | Amplitude | `$identify` with `user_properties: {"$set": {<audience>: bool}}` (user_id or device_id) |
//! | Braze | one `attributes` object: the identifier and the custom attribute `<audience>: bool` |
//!
//! Every other vendor gets the events as the track events they are.

use crate::{Event, EventType, Object};

/// A person entering (`entered`) or leaving an audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership<'e> {
    pub audience: &'e str,
    pub entered: bool,
}

impl Membership<'_> {
    /// The profile property that records it: `{<audience>: entered}`.
    pub fn flag(self) -> Object {
        let mut o = Object::new();
        o.insert(self.audience.to_owned(), self.entered.into());
        o
    }
}

/// The membership change an event records: a track named `Audience
/// Entered` / `Audience Exited` with a non-empty `properties.audience`.
pub fn membership(event: &Event) -> Option<Membership<'_>> {
    if event.kind != EventType::Track {
        return None;
    }
    let entered = match event.event.as_deref()? {
        crate::audience::ENTERED => true,
        crate::audience::EXITED => false,
        _ => return None,
    };
    let audience = event
        .properties
        .as_ref()?
        .get("audience")?
        .as_str()
        .filter(|a| !a.is_empty())?;
    Some(Membership { audience, entered })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(name: &str, props: serde_json::Value) -> Event {
        let mut e = Event::new(EventType::Track, "m1");
        e.event = Some(name.into());
        e.properties = props.as_object().cloned();
        e
    }

    #[test]
    fn only_sluices_two_events_with_an_audience_are_memberships() {
        let entered = event("Audience Entered", json!({"audience": "vip", "traits": {}}));
        let m = membership(&entered).unwrap();
        assert_eq!(
            (m.audience, m.entered, m.flag()),
            (
                "vip",
                true,
                json!({"vip": true}).as_object().cloned().unwrap()
            )
        );
        let exited = event("Audience Exited", json!({"audience": "vip"}));
        assert_eq!(membership(&exited).unwrap().flag()["vip"], false);
        assert_eq!(membership(&event("Audience Entered", json!({}))), None);
        assert_eq!(
            membership(&event("Audience Entered", json!({"audience": ""}))),
            None
        );
        assert_eq!(
            membership(&event("Order Completed", json!({"audience": "vip"}))),
            None
        );
        let mut identify = entered.clone();
        identify.kind = EventType::Identify;
        assert_eq!(membership(&identify), None);
    }
}
