-- Audience backfills (edge-worker/src/audience/backfill.rs): one row per job,
-- created by POST /admin/v1/audiences/backfill and advanced one step at a time
-- by the jobs Queue. `step` is the next step to run (a step message for any
-- other step is a redelivery, or early); `cursor` is the position of the last
-- lake object done (objects are walked newest first, at or below `top`, the
-- newest position when the job was created).
CREATE TABLE audience_backfills (
  id            TEXT PRIMARY KEY,
  spec          TEXT NOT NULL,
  status        TEXT NOT NULL,
  step          INTEGER NOT NULL DEFAULT 0,
  cursor        TEXT NOT NULL,
  top           TEXT NOT NULL,
  objects_total INTEGER NOT NULL DEFAULT 0,
  objects_done  INTEGER NOT NULL DEFAULT 0,
  events_read   INTEGER NOT NULL DEFAULT 0,
  events_fed    INTEGER NOT NULL DEFAULT 0,
  errors        INTEGER NOT NULL DEFAULT 0,
  last_errors   TEXT NOT NULL DEFAULT '[]',
  error         TEXT,
  actor         TEXT NOT NULL,
  created_at    TEXT NOT NULL,
  updated_at    TEXT NOT NULL
);
