-- The supply chain: genealogy (splits, merges, repacks), batch status (held, recalled),
-- recalls, anomalies and what the analyzer needs to find them.
--
-- What a regulator relies on is recorded as ledger events (transformations, inspections, holds and
-- recalls are events on the batches' chains). The tables here index those events for fast queries
-- (links, recalls) or are derived from them by the analyzer (anomalies, stock, drug serials).

-- Parent batch → child batch, made by a transformation event. The genealogy is a DAG.
CREATE TABLE batch_links (
    parent_id         bigint NOT NULL REFERENCES batches (id),
    child_id          bigint NOT NULL REFERENCES batches (id),
    transformation_id uuid NOT NULL,
    quantity          numeric,
    uom               text,
    PRIMARY KEY (parent_id, child_id),
    CHECK (parent_id <> child_id)
);
CREATE INDEX batch_links_child_idx ON batch_links (child_id);

CREATE FUNCTION trace_refuse_cycle() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        WITH RECURSIVE up(id) AS (
            SELECT NEW.parent_id
            UNION
            SELECT l.parent_id FROM batch_links l JOIN up ON l.child_id = up.id
        ) SELECT 1 FROM up WHERE id = NEW.child_id
    ) THEN
        RAISE EXCEPTION 'batch % cannot descend from its own descendant %', NEW.parent_id, NEW.child_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER batch_links_acyclic BEFORE INSERT ON batch_links
    FOR EACH ROW EXECUTE FUNCTION trace_refuse_cycle();
CREATE TRIGGER batch_links_append_only BEFORE UPDATE OR DELETE ON batch_links
    FOR EACH ROW EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER batch_links_no_truncate BEFORE TRUNCATE ON batch_links
    FOR EACH STATEMENT EXECUTE FUNCTION trace_refuse_change();

-- The status a batch's own events gave it: active, on_hold (a failed inspection upstream) or
-- recalled. Kept on the chain head, which capture locks anyway, so refusing a sale costs nothing.
ALTER TABLE batch_heads ADD COLUMN status text NOT NULL DEFAULT 'active'
    CHECK (status IN ('active', 'on_hold', 'recalled'));
ALTER TABLE batch_heads ADD COLUMN status_since timestamptz;

CREATE TABLE recalls (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id       bigint NOT NULL REFERENCES batches (id),
    event_id       uuid NOT NULL UNIQUE REFERENCES events (event_id),
    level          text NOT NULL CHECK (level IN ('I', 'II', 'III')),
    reason         text NOT NULL,
    scope          text,
    issued_by      text NOT NULL,
    issued_at      timestamptz NOT NULL,
    affected       integer NOT NULL
);
CREATE TRIGGER recalls_append_only BEFORE UPDATE OR DELETE ON recalls
    FOR EACH ROW EXECUTE FUNCTION trace_refuse_change();

-- Derived by the analyzer, which reads events in log order (leaf index), so each is seen once.
CREATE TABLE analyzer_state (
    name        text PRIMARY KEY,
    position    bigint NOT NULL,
    swept_at    timestamptz
);

CREATE TABLE anomalies (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          text NOT NULL,
    batch_id      bigint NOT NULL REFERENCES batches (id),
    event_id      uuid REFERENCES events (event_id),
    node_id       bigint REFERENCES nodes (id),
    enterprise_id bigint REFERENCES enterprises (id),
    detail        text NOT NULL,
    event_time    timestamptz,
    detected_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX anomalies_kind_idx ON anomalies (kind, detected_at);
CREATE INDEX anomalies_enterprise_idx ON anomalies (enterprise_id, detected_at);
CREATE INDEX anomalies_batch_idx ON anomalies (batch_id);
CREATE UNIQUE INDEX anomalies_once_idx ON anomalies (kind, batch_id, coalesce(event_id, '00000000-0000-0000-0000-000000000000'::uuid));

-- Quantity in and out of each batch at each node, in the batch's unit (kg for masses).
CREATE TABLE batch_stock (
    batch_id    bigint NOT NULL REFERENCES batches (id),
    node_id     bigint NOT NULL REFERENCES nodes (id),
    received    numeric NOT NULL DEFAULT 0,
    dispatched  numeric NOT NULL DEFAULT 0,
    last_event  timestamptz,
    PRIMARY KEY (batch_id, node_id)
);

CREATE TABLE drug_serials (
    serial       text PRIMARY KEY,
    batch_id     bigint NOT NULL REFERENCES batches (id),
    dispensed_by uuid NOT NULL REFERENCES events (event_id),
    node_id      bigint NOT NULL REFERENCES nodes (id)
);

CREATE INDEX events_batch_step_idx ON events (batch_id, biz_step);

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'traceability_runtime') THEN
        GRANT SELECT, INSERT ON batch_links, recalls TO traceability_runtime;
        GRANT SELECT, INSERT, UPDATE ON analyzer_state, anomalies, batch_stock, drug_serials
            TO traceability_runtime;
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO traceability_runtime;
    END IF;
END
$$;
