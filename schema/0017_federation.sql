-- Federated ledgers (docs/federation.md).
--
-- federation_members: the member ledgers of the federation file this ledger was started with, as the
-- write path needs them (is a shipment's destination a node of another member?). Rewritten by every
-- server start from TRACE_FEDERATION; configuration, not ledger.
CREATE TABLE federation_members (
    origin  text PRIMARY KEY CHECK (length(origin) BETWEEN 1 AND 200),
    url     text NOT NULL,
    areas   text[] NOT NULL,
    own     boolean NOT NULL
);

-- Every checkpoint of another member this ledger accepted a handover voucher under, verified with that
-- member's pinned key and proved consistent with the largest one seen before (its size and root are the
-- "latest seen"). Never changed or removed: a member that later shows a tree inconsistent with one of
-- these is caught.
CREATE TABLE federation_checkpoints (
    origin   text NOT NULL,
    size     bigint NOT NULL CHECK (size >= 0),
    root     bytea NOT NULL CHECK (length(root) = 32),
    note     text NOT NULL,
    seen_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (origin, size)
);

-- A batch received from another member ledger with a verified voucher: where it comes from, and the
-- last hash of its chain there, which its first event here links to (instead of the genesis value).
CREATE TABLE foreign_batches (
    batch_id          bigint PRIMARY KEY REFERENCES batches (id),
    origin            text NOT NULL,
    trace_code        text NOT NULL UNIQUE,
    shipment_event_id uuid NOT NULL,
    last_seq          integer NOT NULL CHECK (last_seq >= 1),
    last_hash         bytea NOT NULL CHECK (length(last_hash) = 32),
    leaf_index        bigint NOT NULL CHECK (leaf_index >= 0),
    checkpoint_size   bigint NOT NULL,
    voucher           bytea NOT NULL,  -- the voucher as received (JSON), kept for audit
    received_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER federation_checkpoints_append_only BEFORE UPDATE OR DELETE ON federation_checkpoints
    FOR EACH ROW EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER federation_checkpoints_no_truncate BEFORE TRUNCATE ON federation_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER foreign_batches_append_only BEFORE UPDATE OR DELETE ON foreign_batches
    FOR EACH ROW EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER foreign_batches_no_truncate BEFORE TRUNCATE ON foreign_batches
    FOR EACH STATEMENT EXECUTE FUNCTION trace_refuse_change();

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'traceability_runtime') THEN
        GRANT SELECT, INSERT, DELETE ON federation_members TO traceability_runtime;
        GRANT SELECT, INSERT ON federation_checkpoints, foreign_batches TO traceability_runtime;
    END IF;
END
$$;
