-- A recall issued at a batch's home ledger reaching the member ledgers its goods went to (docs/federation.md,
-- "A recall crosses ledgers").
--
-- federation_outbox: at the home ledger, each signed recall notice for a member ledger that received batches the
-- recall reached, kept until that member confirmed it (delivered_at); sent again until then.
CREATE TABLE federation_outbox (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recall_id     bigint NOT NULL REFERENCES recalls (id),
    member        text NOT NULL CHECK (length(member) BETWEEN 1 AND 200),
    note          text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    attempts      integer NOT NULL DEFAULT 0,
    delivered_at  timestamptz,
    last_error    text,
    UNIQUE (recall_id, member)
);
CREATE INDEX federation_outbox_pending ON federation_outbox (id) WHERE delivered_at IS NULL;

-- federation_notices: at a member ledger, every recall notice it accepted, verified with the sender's pinned key,
-- with the recalls it recorded here. The same notice again changes nothing. Never changed or removed.
CREATE TABLE federation_notices (
    origin       text NOT NULL,
    notice_id    text NOT NULL CHECK (length(notice_id) BETWEEN 1 AND 100),
    digest       bytea NOT NULL CHECK (length(digest) = 32),
    note         text NOT NULL,
    recall_ids   bigint[] NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (origin, notice_id)
);
CREATE TRIGGER federation_notices_append_only BEFORE UPDATE OR DELETE ON federation_notices
    FOR EACH ROW EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER federation_notices_no_truncate BEFORE TRUNCATE ON federation_notices
    FOR EACH STATEMENT EXECUTE FUNCTION trace_refuse_change();

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'traceability_runtime') THEN
        GRANT SELECT, INSERT, UPDATE ON federation_outbox TO traceability_runtime;
        GRANT SELECT, INSERT ON federation_notices TO traceability_runtime;
    END IF;
END
$$;
