-- An inclusion proof finds its event's leaf by the event's key (log_leaves.event_pk) and needs only the leaf's
-- log and index from that row: the leaf's hash comes with its group of hashes from the level-0 tile, read in
-- the same query. The unique index on event_pk carries both, so the lookup is answered from the index alone
-- (an index-only scan) instead of one more random read of the table for every proof. It stays the constraint
-- that stops an event being integrated twice, under the same name.
ALTER TABLE log_leaves
    DROP CONSTRAINT log_leaves_event_pk_key,
    ADD CONSTRAINT log_leaves_event_pk_key UNIQUE (event_pk) INCLUDE (log_id, leaf_index);
