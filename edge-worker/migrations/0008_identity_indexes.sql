-- The identity graph's indexes, for what D1 bills (rows written; every index
-- entry is one more row per insert):
--
-- * An identify's consent is recorded only when it differs from the
--   visitor's latest record (edge-worker/src/identity.rs): that lookup reads
--   a visitor's records in time order. Records are now rare (changes, not one
--   per identify), so this index's extra row per record costs less than the
--   rows it saves.
-- * `identity_links` is keyed by (anonymous_id, user_id), which serves the
--   hot lookup (an audience resolving a device to its user). Only the privacy
--   jobs walk it from a user to their devices, rarely: that walk scans
--   (rows read, $0.001 per million) instead of an index adding a row written
--   to every new link.
CREATE INDEX consent_events_visitor ON consent_events (anonymous_id, user_id, at);
DROP INDEX identity_links_user;
