-- Lean rows: what D1 bills is rows written, and every index is one more row
-- per insert (D1 counts the table's row and each index entry). So:
--
-- * `events` keeps each event once (typed columns, `properties`/`traits`/
--   `context` as JSON, the remaining fields in `extra`): no `raw` copy. It is
--   a WITHOUT ROWID table keyed by (person, message_id), with person =
--   COALESCE(anonymous_id, user_id): one row written per event, and the key
--   serves every query by person (export, deletion, the debugger). Retention
--   (`received_at < cutoff`, daily) scans, which costs rows read only.
-- * `counters` and the lake index are WITHOUT ROWID too (one row per write);
--   the lake index is one row per lake object, listing whose events it holds
--   (`people`, a JSON array), instead of one row per object and person.
-- * The identity graph's tables are WITHOUT ROWID (a new profile, trait or
--   consent record is one row, not one plus its key's index); the consent
--   history keeps no secondary index (a person's history is read by the
--   privacy jobs only, and a scan costs rows read, not rows written).
CREATE TABLE events_lean (
  person       TEXT NOT NULL,
  message_id   TEXT NOT NULL,
  source       TEXT NOT NULL,
  type         TEXT NOT NULL,
  event        TEXT,
  name         TEXT,
  anonymous_id TEXT,
  user_id      TEXT,
  timestamp    TEXT,
  sent_at      TEXT,
  received_at  TEXT NOT NULL,
  properties   TEXT,
  traits       TEXT,
  context      TEXT,
  extra        TEXT,
  PRIMARY KEY (person, message_id)
) WITHOUT ROWID;
INSERT OR IGNORE INTO events_lean
  SELECT COALESCE(anonymous_id, user_id, ''), message_id, source, type, event, name, anonymous_id,
         user_id, timestamp, sent_at, received_at, properties, traits, context,
         NULLIF(json_remove(raw, '$.type', '$.messageId', '$.anonymousId', '$.userId', '$.event',
                            '$.name', '$.properties', '$.traits', '$.context', '$.timestamp',
                            '$.sentAt', '$.receivedAt'), '{}')
  FROM events;
DROP TABLE events;
ALTER TABLE events_lean RENAME TO events;

CREATE TABLE counters_lean (
  day    TEXT NOT NULL,
  source TEXT NOT NULL,
  name   TEXT NOT NULL,
  count  INTEGER NOT NULL,
  PRIMARY KEY (day, source, name)
) WITHOUT ROWID;
INSERT INTO counters_lean SELECT day, source, name, count FROM counters;
DROP TABLE counters;
ALTER TABLE counters_lean RENAME TO counters;

CREATE TABLE lake_objects (
  key    TEXT PRIMARY KEY,
  dt     TEXT NOT NULL,
  people TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO lake_objects SELECT key, MIN(dt), json_group_array(person) FROM lake_index GROUP BY key;
DROP TABLE lake_index;

CREATE TABLE profiles_lean (
  user_id    TEXT PRIMARY KEY,
  first_seen TEXT NOT NULL,
  last_seen  TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO profiles_lean SELECT user_id, first_seen, last_seen FROM profiles;
DROP TABLE profiles;
ALTER TABLE profiles_lean RENAME TO profiles;

CREATE TABLE profile_traits_lean (
  user_id    TEXT NOT NULL,
  trait      TEXT NOT NULL,
  value      TEXT NOT NULL,
  at         TEXT NOT NULL,
  message_id TEXT NOT NULL,
  PRIMARY KEY (user_id, trait)
) WITHOUT ROWID;
INSERT INTO profile_traits_lean SELECT user_id, trait, value, at, message_id FROM profile_traits;
DROP TABLE profile_traits;
ALTER TABLE profile_traits_lean RENAME TO profile_traits;

CREATE TABLE identity_links_lean (
  anonymous_id TEXT NOT NULL,
  user_id      TEXT NOT NULL,
  first_seen   TEXT NOT NULL,
  last_seen    TEXT NOT NULL,
  PRIMARY KEY (anonymous_id, user_id)
) WITHOUT ROWID;
INSERT INTO identity_links_lean SELECT anonymous_id, user_id, first_seen, last_seen FROM identity_links;
DROP TABLE identity_links;
ALTER TABLE identity_links_lean RENAME TO identity_links;
CREATE INDEX identity_links_user ON identity_links (user_id);

CREATE TABLE consent_events_lean (
  message_id   TEXT PRIMARY KEY,
  anonymous_id TEXT,
  user_id      TEXT,
  at           TEXT NOT NULL,
  consent      TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO consent_events_lean SELECT message_id, anonymous_id, user_id, at, consent FROM consent_events;
DROP TABLE consent_events;
ALTER TABLE consent_events_lean RENAME TO consent_events;
