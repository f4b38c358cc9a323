-- Lake compaction (edge-worker/src/compact.rs): the inputs a compaction has
-- indexed away (its output is indexed in lake_objects in the same batch) and
-- still has to delete from R2. One row per hour directory, deleted once the
-- inputs are gone; a rerun finishes a recorded deletion first.
CREATE TABLE lake_compactions (
  dir    TEXT PRIMARY KEY,
  output TEXT NOT NULL,
  inputs TEXT NOT NULL
) WITHOUT ROWID;
