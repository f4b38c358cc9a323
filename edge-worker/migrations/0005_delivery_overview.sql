-- The debugger's delivery overview (edge-worker/src/delivery/overview.rs):
-- per destination and ten-minute bucket ('2026-12-01T11:50'), what became of
-- its events, the delivery latency and the last error. Approximate under
-- Queue redeliveries, like the counters; buckets older than a day are pruned
-- by the daily retention run. (Numbered 0005: 0004 is taken on another branch.)
CREATE TABLE delivery_overview (
  bucket         TEXT NOT NULL,
  destination    TEXT NOT NULL,
  delivered      INTEGER NOT NULL DEFAULT 0,
  retrying       INTEGER NOT NULL DEFAULT 0,
  withheld       INTEGER NOT NULL DEFAULT 0,
  dead_lettered  INTEGER NOT NULL DEFAULT 0,
  skipped        INTEGER NOT NULL DEFAULT 0,
  latency_ms_sum INTEGER NOT NULL DEFAULT 0,
  latency_ms_max INTEGER NOT NULL DEFAULT 0,
  last_error     TEXT,
  last_error_at  TEXT,
  PRIMARY KEY (bucket, destination)
);
