-- `traceability verify` pairs every event's chain hash with its Merkle leaf, by event key range. With the
-- hash in an index on the key, that pass reads the index only (about a tenth of the table's size) instead
-- of every heap page of the events a second time, after the chain pass has read them once.
CREATE INDEX events_id_hash_idx ON events (id) INCLUDE (hash);
