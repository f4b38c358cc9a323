-- Identity graph: which anonymousIds (devices, browsers) belong to which userId.
-- Rows are edges; merges are upserts of min/max times, so they are idempotent
-- and independent of the order events arrive in.
CREATE TABLE identity_links (
  anonymous_id TEXT NOT NULL,
  user_id      TEXT NOT NULL,
  first_seen   TEXT NOT NULL,
  last_seen    TEXT NOT NULL,
  PRIMARY KEY (anonymous_id, user_id)
);
CREATE INDEX identity_links_user ON identity_links (user_id);

-- One profile per person.
CREATE TABLE profiles (
  user_id    TEXT PRIMARY KEY,
  first_seen TEXT NOT NULL,
  last_seen  TEXT NOT NULL
);

-- Traits, last writer wins by event time (then messageId): order-independent.
CREATE TABLE profile_traits (
  user_id    TEXT NOT NULL,
  trait      TEXT NOT NULL,
  value      TEXT NOT NULL,
  at         TEXT NOT NULL,
  message_id TEXT NOT NULL,
  PRIMARY KEY (user_id, trait)
);

-- Consent history: every consent change, and the consent of identify calls.
CREATE TABLE consent_events (
  message_id   TEXT PRIMARY KEY,
  anonymous_id TEXT,
  user_id      TEXT,
  at           TEXT NOT NULL,
  consent      TEXT NOT NULL
);
CREATE INDEX consent_events_anonymous ON consent_events (anonymous_id);
CREATE INDEX consent_events_user ON consent_events (user_id);

-- Ids whose future events are dropped (suppress) or kept out of sale/sharing (opt_out).
CREATE TABLE suppressions (
  id         TEXT PRIMARY KEY,
  kind       TEXT NOT NULL,
  created_at TEXT NOT NULL,
  request_id TEXT
);

-- Which R2 objects hold whose events (for export, deletion and retention).
CREATE TABLE lake_index (
  key    TEXT NOT NULL,
  person TEXT NOT NULL,
  dt     TEXT NOT NULL,
  PRIMARY KEY (key, person)
);
CREATE INDEX lake_index_person ON lake_index (person);

-- Data-subject requests: jobs with a status that survives restarts.
CREATE TABLE dsr_requests (
  id         TEXT PRIMARY KEY,
  type       TEXT NOT NULL,
  subject    TEXT NOT NULL,
  status     TEXT NOT NULL,
  actor      TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  result     TEXT,
  error      TEXT
);

-- Every admin call and every privacy action: who, when, what, how many records.
CREATE TABLE audit_log (
  id      INTEGER PRIMARY KEY AUTOINCREMENT,
  at      TEXT NOT NULL,
  actor   TEXT NOT NULL,
  action  TEXT NOT NULL,
  target  TEXT,
  outcome TEXT NOT NULL,
  records INTEGER NOT NULL DEFAULT 0
);
