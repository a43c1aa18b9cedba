-- Members witness each other (docs/federation.md, "Witnessing").
--
-- federation_checkpoints (0017) keeps every checkpoint of another member this ledger verified and found
-- consistent with the ones before; now also those its witness fetched from the member itself and those
-- other members passed on (gossip). `via` says which.
ALTER TABLE federation_checkpoints
    ADD COLUMN via text NOT NULL DEFAULT 'voucher' CHECK (via IN ('voucher', 'witness', 'gossip'));

-- This ledger's cosignature (cosignature/v1, made with its log key under its origin) of a member's
-- checkpoint, once it verified that checkpoint and its consistency; served with the checkpoint to anyone
-- (GET /api/v1/federation/witnessed) and posted to the member.
CREATE TABLE federation_cosignatures (
    origin     text NOT NULL,
    size       bigint NOT NULL CHECK (size >= 0),
    note       text NOT NULL,   -- the member's signed checkpoint with this ledger's cosignature line
    signed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (origin, size)
);

-- A proven split view: two checkpoints of one member, both signed with its pinned key, that are not one
-- history (the same size with different roots, or no consistency proof between them). Both signed notes
-- are kept as they were received. Evidence: never changed or removed.
CREATE TABLE split_views (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    origin       text NOT NULL,
    first_note   text NOT NULL,   -- the checkpoint held before
    second_note  text NOT NULL,   -- the checkpoint that contradicts it
    reason       text NOT NULL CHECK (reason IN ('same_size', 'not_consistent', 'no_proof', 'shrank')),
    detail       text NOT NULL,
    via          text NOT NULL,   -- 'witness', 'voucher', or 'gossip:<origin of the member that passed it on>'
    detected_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX split_views_origin_idx ON split_views (origin, detected_at DESC);

-- An operator's decision that a split view is dealt with: the member's vouchers are accepted again, and the
-- checkpoints seen before it no longer count (the next one fetched from the member starts its history here).
CREATE TABLE split_view_clearances (
    split_view_id  bigint PRIMARY KEY REFERENCES split_views (id),
    cleared_by     text NOT NULL,
    reason         text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    cleared_at     timestamptz NOT NULL DEFAULT now()
);

-- How witnessing each member went last (one row per member, rewritten by every round): operations state.
CREATE TABLE witness_status (
    origin        text PRIMARY KEY,
    checked_at    timestamptz NOT NULL,
    ok_at         timestamptz,
    size          bigint,
    failures      integer NOT NULL DEFAULT 0,
    problem       text,
    next_at       timestamptz NOT NULL
);

CREATE TRIGGER federation_cosignatures_append_only BEFORE UPDATE OR DELETE ON federation_cosignatures
    FOR EACH ROW EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER federation_cosignatures_no_truncate BEFORE TRUNCATE ON federation_cosignatures
    FOR EACH STATEMENT EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER split_views_append_only BEFORE UPDATE OR DELETE ON split_views
    FOR EACH ROW EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER split_views_no_truncate BEFORE TRUNCATE ON split_views
    FOR EACH STATEMENT EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER split_view_clearances_append_only BEFORE UPDATE OR DELETE ON split_view_clearances
    FOR EACH ROW EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER split_view_clearances_no_truncate BEFORE TRUNCATE ON split_view_clearances
    FOR EACH STATEMENT EXECUTE FUNCTION trace_refuse_change();

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'traceability_runtime') THEN
        GRANT SELECT, INSERT ON federation_cosignatures, split_views, split_view_clearances TO traceability_runtime;
        GRANT SELECT, INSERT, UPDATE, DELETE ON witness_status TO traceability_runtime;
    END IF;
END
$$;
