-- Drug packaging hierarchy (case → box → unit), derived from EPCIS AggregationEvents by the
-- analyzer: ADD packs children into a parent, DELETE unpacks them.
CREATE TABLE packages (
    code        text PRIMARY KEY,
    parent      text,
    batch_id    bigint NOT NULL REFERENCES batches (id),
    event_id    uuid NOT NULL REFERENCES events (event_id)
);
CREATE INDEX packages_parent_idx ON packages (parent);

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'traceability_runtime') THEN
        GRANT SELECT, INSERT, UPDATE ON packages TO traceability_runtime;
    END IF;
END
$$;
