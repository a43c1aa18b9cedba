-- An enterprise a recall reaches acknowledges the notice: once, through its API credential. The first
-- acknowledgement is the one kept (a second answers it); rows are never changed or removed.
CREATE TABLE recall_acknowledgements (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recall_id      bigint NOT NULL REFERENCES recalls (id),
    enterprise_id  bigint NOT NULL REFERENCES enterprises (id),
    at             timestamptz NOT NULL,
    actor_kind     text NOT NULL CHECK (actor_kind IN ('token', 'user')),
    actor_id       bigint NOT NULL,
    actor_name     text NOT NULL CHECK (length(actor_name) BETWEEN 1 AND 100),
    UNIQUE (recall_id, enterprise_id)
);
CREATE TRIGGER recall_acknowledgements_append_only BEFORE UPDATE OR DELETE ON recall_acknowledgements
    FOR EACH ROW EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER recall_acknowledgements_no_truncate BEFORE TRUNCATE ON recall_acknowledgements
    FOR EACH STATEMENT EXECUTE FUNCTION trace_refuse_change();

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'traceability_runtime') THEN
        GRANT SELECT, INSERT ON recall_acknowledgements TO traceability_runtime;
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO traceability_runtime;
    END IF;
END
$$;
