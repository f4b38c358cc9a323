-- An identify's consent is recorded only when it differs from the visitor's
-- latest record (edge-worker/src/identity.rs): that lookup reads a visitor's
-- records in time order. Records are now rare (changes, not one per identify),
-- so the index's extra row per record costs less than the rows it saves.
CREATE INDEX consent_events_visitor ON consent_events (anonymous_id, user_id, at);
