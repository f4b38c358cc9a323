//! Who the visitor is: a pure state machine over the anonymousId, the userId
//! (with its JSON, written once per change) and the traits (JSON text, as
//! stored and sent). Each transition returns the storage [`Write`]s it needs;
//! `sdk.rs` carries them out and does what needs the page (JSON, random ids).
//!
//! - load: the stored anonymousId if it is a UUID, else a new one (stored);
//!   the stored userId and traits.
//! - `identify(userId)`: a different user than the identified one starts
//!   with no traits, in storage too; an anonymous visitor's first
//!   `identify` keeps their traits (as analytics.js does); traits given are
//!   merged into the current ones (by the caller) and stored.
//! - `alias(userId)`: the previousId is the userId, or the anonymousId; the
//!   new id is the same person (`same_person`), who keeps their traits.
//! - `reset()`: no user, no traits, a new anonymousId.

use crate::prelude::*;

pub const ANON_KEY: &str = "sluice_aid";
pub const USER_KEY: &str = "sluice_uid";
pub const TRAITS_KEY: &str = "sluice_traits";

/// No traits.
const EMPTY: &str = "{}";

/// A storage change a transition asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Set(&'static str, String),
    Remove(&'static str),
}

/// The visitor's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    anonymous_id: String,
    user_id: Option<String>,
    /// The userId as JSON (the page's string, escaped by `JSON.stringify`).
    user_id_json: Option<String>,
    traits: String,
}

impl Identity {
    /// At load, from what is stored (`user_id` with its JSON; `traits`: a
    /// JSON object, else none) and a new id to use if no valid anonymousId is stored.
    pub fn restore(
        stored_anonymous_id: Option<String>,
        new_id: String,
        (user_id, user_id_json): (Option<String>, Option<String>),
        traits: Option<String>,
    ) -> (Identity, Write) {
        let anonymous_id = stored_anonymous_id
            .filter(|v| sluice_shared::id::is_uuid(v))
            .unwrap_or(new_id);
        let me = Identity {
            anonymous_id,
            user_id,
            user_id_json,
            traits: traits.unwrap_or_else(|| EMPTY.into()),
        };
        let write = me.anonymous_write();
        (me, write)
    }

    pub fn anonymous_id(&self) -> &str {
        &self.anonymous_id
    }

    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// The userId as JSON, for events.
    pub fn user_id_json(&self) -> Option<&str> {
        self.user_id_json.as_deref()
    }

    /// The traits, a JSON object.
    pub fn traits(&self) -> &str {
        &self.traits
    }

    /// `alias`'s default previousId.
    pub fn previous_id(&self) -> &str {
        self.user_id().unwrap_or(&self.anonymous_id)
    }

    /// Store the anonymousId (when storage becomes allowed).
    pub fn anonymous_write(&self) -> Write {
        Write::Set(ANON_KEY, self.anonymous_id.clone())
    }

    /// `identify(userId)` or `alias(userId)` (`json`: the id as JSON): a
    /// user other than the identified one has no traits yet (the stored ones
    /// are removed), unless the call says it is the same person under a new
    /// id (`same_person`: `alias`); an anonymous visitor keeps theirs.
    pub fn identify(
        &mut self,
        user_id: String,
        json: Option<String>,
        same_person: bool,
    ) -> Vec<Write> {
        let mut writes = vec![Write::Set(USER_KEY, user_id.clone())];
        if !same_person && self.user_id().is_some_and(|u| u != user_id) {
            self.traits = EMPTY.into();
            writes.push(Write::Remove(TRAITS_KEY));
        }
        self.user_id = Some(user_id);
        self.user_id_json = json;
        writes
    }

    /// `identify(…, traits)`: `merged` is the current traits with the new
    /// ones assigned over them (a JSON object).
    pub fn set_traits(&mut self, merged: String) -> Write {
        self.traits = merged.clone();
        Write::Set(TRAITS_KEY, merged)
    }

    /// `reset()`: forget the user and start a new anonymous visitor.
    pub fn reset(&mut self, new_id: String) -> [Write; 4] {
        self.user_id = None;
        self.user_id_json = None;
        self.traits = EMPTY.into();
        self.anonymous_id = new_id;
        [
            Write::Remove(USER_KEY),
            Write::Remove(TRAITS_KEY),
            Write::Remove(ANON_KEY),
            self.anonymous_write(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0b7c7d5e-8f9a-4b1c-9d2e-3f4a5b6c7d8e";
    const B: &str = "1c8d8e6f-9a0b-4c2d-8e3f-4a5b6c7d8e9f";

    fn user(id: &str) -> (String, Option<String>) {
        (id.into(), Some(cat(&["\"", id, "\""])))
    }

    fn identify(me: &mut Identity, id: &str) -> Vec<Write> {
        let (id, json) = user(id);
        me.identify(id, json, false)
    }

    use crate::json::cat;

    fn fresh() -> Identity {
        Identity::restore(None, A.into(), (None, None), None).0
    }

    #[test]
    fn a_stored_anonymous_id_is_kept_and_an_invalid_one_replaced() {
        let (me, w) = Identity::restore(Some(B.into()), A.into(), (None, None), None);
        assert_eq!(me.anonymous_id(), B);
        assert_eq!(w, Write::Set(ANON_KEY, B.into()));
        let (me, w) = Identity::restore(Some("forged\"id".into()), A.into(), (None, None), None);
        assert_eq!(me.anonymous_id(), A);
        assert_eq!(w, Write::Set(ANON_KEY, A.into()));
        assert_eq!(me.traits(), "{}");
        assert_eq!(me.user_id(), None);
    }

    #[test]
    fn the_stored_user_and_traits_come_back() {
        let (id, json) = user("u1");
        let (me, _) = Identity::restore(
            None,
            A.into(),
            (Some(id), json),
            Some(r#"{"plan":"pro"}"#.into()),
        );
        assert_eq!(me.user_id(), Some("u1"));
        assert_eq!(me.user_id_json(), Some("\"u1\""));
        assert_eq!(me.traits(), r#"{"plan":"pro"}"#);
        assert_eq!(me.previous_id(), "u1");
    }

    #[test]
    fn identifying_the_same_user_keeps_the_traits_and_another_user_clears_them() {
        let mut me = fresh();
        assert_eq!(identify(&mut me, "u1"), [Write::Set(USER_KEY, "u1".into())]);
        assert_eq!(
            me.set_traits(r#"{"a":1}"#.into()),
            Write::Set(TRAITS_KEY, r#"{"a":1}"#.into())
        );
        identify(&mut me, "u1");
        assert_eq!(me.traits(), r#"{"a":1}"#);
        identify(&mut me, "u2");
        assert_eq!(me.traits(), "{}");
        assert_eq!(me.user_id_json(), Some("\"u2\""));
        assert_eq!(me.anonymous_id(), A, "identify keeps the anonymousId");
    }

    #[test]
    fn another_users_identify_removes_the_old_users_traits_from_storage() {
        let mut me = fresh();
        identify(&mut me, "u1");
        me.set_traits(r#"{"email":"u1@example.com"}"#.into());
        assert_eq!(
            identify(&mut me, "u2"),
            [Write::Set(USER_KEY, "u2".into()), Write::Remove(TRAITS_KEY)],
            "a reload must not bring u1's traits back as u2's"
        );
        assert_eq!(me.traits(), "{}");
        assert_eq!(
            identify(&mut me, "u2"),
            [Write::Set(USER_KEY, "u2".into())],
            "the same user again keeps the stored traits"
        );
    }

    #[test]
    fn an_anonymous_visitors_first_identify_keeps_their_traits() {
        let mut me = fresh();
        me.set_traits(r#"{"plan":"trial"}"#.into());
        assert_eq!(identify(&mut me, "u1"), [Write::Set(USER_KEY, "u1".into())]);
        assert_eq!(me.traits(), r#"{"plan":"trial"}"#);
        assert_eq!(me.user_id(), Some("u1"));
    }

    #[test]
    fn an_alias_of_the_identified_user_keeps_their_traits() {
        let mut me = fresh();
        identify(&mut me, "u1");
        me.set_traits(r#"{"plan":"pro"}"#.into());
        let (id, json) = user("u2");
        assert_eq!(
            me.identify(id, json, true),
            [Write::Set(USER_KEY, "u2".into())],
            "the same person's stored traits stay"
        );
        assert_eq!(me.user_id(), Some("u2"));
        assert_eq!(me.user_id_json(), Some("\"u2\""));
        assert_eq!(me.traits(), r#"{"plan":"pro"}"#);
    }

    #[test]
    fn alias_defaults_to_the_user_then_the_anonymous_id() {
        let mut me = fresh();
        assert_eq!(me.previous_id(), A);
        identify(&mut me, "u1");
        assert_eq!(me.previous_id(), "u1");
    }

    #[test]
    fn reset_forgets_the_user_and_starts_a_new_visitor() {
        let mut me = fresh();
        identify(&mut me, "u1");
        me.set_traits(r#"{"a":1}"#.into());
        let writes = me.reset(B.into());
        assert_eq!(me.user_id(), None);
        assert_eq!(me.user_id_json(), None);
        assert_eq!(me.traits(), "{}");
        assert_eq!(me.anonymous_id(), B);
        assert_eq!(
            writes,
            [
                Write::Remove(USER_KEY),
                Write::Remove(TRAITS_KEY),
                Write::Remove(ANON_KEY),
                Write::Set(ANON_KEY, B.into()),
            ]
        );
    }
}
