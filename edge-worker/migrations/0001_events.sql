-- Every accepted event, once. messageId is the primary key, so a re-delivered
-- event is ignored (INSERT ... ON CONFLICT DO NOTHING).
CREATE TABLE events (
  message_id   TEXT PRIMARY KEY,
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
  raw          TEXT NOT NULL
);
CREATE INDEX events_received_at ON events (received_at);
CREATE INDEX events_user ON events (user_id);
CREATE INDEX events_anonymous ON events (anonymous_id);
