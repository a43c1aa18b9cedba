-- The ledger's records as a provincial deployment receives them, by PostgreSQL logical replication
-- (docs/federation.md, "A provincial view"): the registry the records name, the records, their
-- genealogy, recalls and anomalies, and the transparency log that proves them. Credentials, sessions,
-- access logs and working state are not in it. Publishing changes needs wal_level=logical, which
-- `traceability federation publish` sets; creating the publication does not, so every ledger has it.
-- Every table here has a primary key (its replica identity), so updates and deletes are published too.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_publication WHERE pubname = 'trace_ledger') THEN
        CREATE PUBLICATION trace_ledger FOR TABLE
            enterprises, nodes, products, batches, events, batch_links, event_corrections, recalls,
            anomalies, logs, log_leaves, checkpoints, foreign_batches, federation_checkpoints, federation_notices;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'cannot create publication trace_ledger; a province cannot subscribe to this ledger';
END
$$;
