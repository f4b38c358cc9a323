-- Per-day counters (dropped events by reason, …). Approximate under Queue
-- retries: a re-delivered count message adds again.
CREATE TABLE counters (
  day    TEXT NOT NULL,
  source TEXT NOT NULL,
  name   TEXT NOT NULL,
  count  INTEGER NOT NULL,
  PRIMARY KEY (day, source, name)
);
