-- Custody: which nodes may speak for a batch. The node that opened a batch holds it; a shipment
-- names its destination node and puts that quantity in transit there; receiving makes the
-- destination a holder; a transformation's outputs are held where it happened. A node that held a
-- batch keeps the right to record about it (a correction, a late sale), so rows only ever move from
-- 'destination' to 'holder', never back and never away.
--
-- Maintained by the one write path (services/recording.py) in the transaction that writes the
-- events, after it has locked the batch's chain head (FOR UPDATE): every writer of one batch's
-- custody holds that row lock first, so concurrent writers cannot race it.

-- The testing laboratory (检测机构) node type is in the node type list since the dairy migration.

CREATE TABLE batch_custody (
    batch_id    bigint NOT NULL REFERENCES batches (id),
    node_id     bigint NOT NULL REFERENCES nodes (id),
    relation    text NOT NULL CHECK (relation IN ('holder', 'destination')),
    in_transit  numeric NOT NULL DEFAULT 0 CHECK (in_transit >= 0),  -- kg for masses, else the shipment's unit
    since       timestamptz NOT NULL,                                -- when the node became what it is
    PRIMARY KEY (batch_id, node_id)
);
CREATE INDEX batch_custody_node_idx ON batch_custody (node_id);

-- A ledger recorded before custody was kept: every node that opened a batch or recorded on it held it.
-- (Shipments still in transit are not restored: their destinations are sealed with the prices.)
INSERT INTO batch_custody (batch_id, node_id, relation, since)
SELECT b.id, b.node_id, 'holder', b.created_at FROM batches b
ON CONFLICT DO NOTHING;
INSERT INTO batch_custody (batch_id, node_id, relation, since)
SELECT e.batch_id, e.node_id, 'holder', min(e.recorded_at) FROM events e
GROUP BY e.batch_id, e.node_id
ON CONFLICT DO NOTHING;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'traceability_runtime') THEN
        GRANT SELECT, INSERT, UPDATE ON batch_custody TO traceability_runtime;
    END IF;
END
$$;
