-- A regulator's triage of an anomaly: how serious it is, where it stands (new, investigating, resolved,
-- dismissed), who follows it up and why. Every change is a new row, never an update: the latest row
-- is the anomaly's state and the rows before it its history. An anomaly without a row is new, at the
-- severity its kind starts with (traceability.domain.anomalies.DEFAULT_SEVERITY).
CREATE TABLE anomaly_triage (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    anomaly_id  bigint NOT NULL REFERENCES anomalies (id),
    at          timestamptz NOT NULL,
    actor_kind  text NOT NULL CHECK (actor_kind IN ('token', 'user')),
    actor_id    bigint NOT NULL,
    actor_name  text NOT NULL CHECK (length(actor_name) BETWEEN 1 AND 100),
    authority   text CHECK (length(authority) <= 100),
    severity    text NOT NULL CHECK (severity IN ('high', 'medium', 'low')),
    status      text NOT NULL CHECK (status IN ('new', 'investigating', 'resolved', 'dismissed')),
    assignee    text CHECK (length(assignee) <= 100),
    note        text CHECK (length(note) <= 2000)
);
CREATE INDEX anomaly_triage_anomaly_idx ON anomaly_triage (anomaly_id, id);
CREATE TRIGGER anomaly_triage_append_only BEFORE UPDATE OR DELETE ON anomaly_triage
    FOR EACH ROW EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER anomaly_triage_no_truncate BEFORE TRUNCATE ON anomaly_triage
    FOR EACH STATEMENT EXECUTE FUNCTION trace_refuse_change();

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'traceability_runtime') THEN
        GRANT SELECT, INSERT ON anomaly_triage TO traceability_runtime;
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO traceability_runtime;
    END IF;
END
$$;
