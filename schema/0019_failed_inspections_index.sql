-- Failed inspections are read newest first by the public page and counted per enterprise by every credit
-- rating. An index over failed inspections only (the test's canonical bytes name a failed result or a
-- non-conformant disposition; position() on bytea is immutable, so it may stand in an index predicate)
-- answers both without reading the bytes of every inspection; it replaces the index over all inspections.
DROP INDEX events_inspecting_time_idx;
CREATE INDEX events_failed_inspection_idx ON events (event_time DESC)
    WHERE biz_step = 'inspecting'
      AND (position('"result":"fail"'::bytea in canonical) > 0
           OR position('"disposition":"non_conformant"'::bytea in canonical) > 0);
