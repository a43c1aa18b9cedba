-- What each captured event costs PostgreSQL beyond its own row (measured with the batched capture load: CPU of
-- the backends per event, WAL records and bytes per event between two pg_current_wal_lsn()).
--
-- The events' primary key carries the chain hash, in place of the separate (id) INCLUDE (hash) index of 0024:
-- `traceability verify` still reads key and hash from an index only, and each event costs one index entry
-- fewer (about 300 bytes of WAL of the 2,000 each event wrote).
--
-- log_leaves loses its two foreign keys: each leaf ran two row triggers in the sequencer, a query each, and
-- the one on events locked the event's row (a WAL record per event, and its page written again), about half
-- of the sequencer's CPU per event. What they guarded is checked otherwise: the sequencer writes only leaves
-- of a registered log that name a recorded event, in the same statement (log_repo.INSERT_LEAVES); an event
-- key in the queue comes only from the trigger on events, and events refuse DELETE (trigger, and no grant);
-- `traceability verify` reports a leaf that names no recorded event as a forged leaf.
--
-- batch_heads keeps half of each page free: a chain head is updated with every event, and an update that
-- finds no room on its page is not HOT (a new index entry, the old one left for vacuum). Only new pages take
-- the setting; the heads of batches opened from now on, the ones that move.
ALTER TABLE log_leaves DROP CONSTRAINT log_leaves_event_pk_fkey;
ALTER TABLE log_leaves DROP CONSTRAINT log_leaves_log_id_fkey;
ALTER TABLE events DROP CONSTRAINT events_pkey;
ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (id) INCLUDE (hash);
DROP INDEX events_id_hash_idx;
ALTER TABLE batch_heads SET (fillfactor = 50);
