-- EPCIS 2.0: what the query interface needs beyond the events themselves, and capture jobs.
--
-- An event captured through /epcis is one ledger record on the chain of the first batch it names
-- (kind 'a', holding the event's JSON text in its hashed bytes) and a short record on the chain of
-- every other batch it names (kind 'r', committing to the first record's digest). Events recorded
-- through the native API have no row here: the query reads them from events itself.
--
-- Like the events they index, these rows are append-only. Read points and business locations are
-- kept as identifier keys ("ai414:0614141073467/1234"), so a URN and a Digital Link for the same
-- place match.

CREATE TABLE epcis_events (
    event_id      uuid PRIMARY KEY,         -- events.event_id of the record
    anchor_id     uuid NOT NULL,            -- events.event_id of the record holding the event (itself for 'a')
    kind          char(1) NOT NULL CHECK (kind IN ('a', 'r')),
    event_uri     text NOT NULL,            -- the EPCIS eventID (given, or the CBV 2.0 event hash)
    event_type    text NOT NULL,
    roles         text[] NOT NULL,          -- how this record's own batch appears in the event (epcList, ...)
    action        text,
    disposition   text,
    read_point    text,
    biz_location  text,
    declared_at   timestamptz,              -- errorDeclaration.declarationTime
    error_reason  text,
    digest        bytea NOT NULL CHECK (length(digest) = 32)  -- SHA-256 of the event's whole JSON text
);

-- The other batches an event names (its anchor record's own batch is that record's, with its roles above),
-- and in which role (epcList, parentID, inputQuantityList, ...). An event's records are found by their
-- ledger ids, which are derived from the eventID (docs/epcis.md), so no index on event_uri is needed: an
-- event that names one batch costs one index entry here beyond the events' own.
CREATE TABLE epcis_what (
    batch_id   bigint NOT NULL,
    event_id   uuid NOT NULL,               -- the anchor record (events.event_id)
    role       text NOT NULL,
    PRIMARY KEY (batch_id, event_id, role)
);

CREATE TRIGGER epcis_events_append_only BEFORE UPDATE OR DELETE ON epcis_events
    FOR EACH ROW EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER epcis_events_no_truncate BEFORE TRUNCATE ON epcis_events
    FOR EACH STATEMENT EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER epcis_what_append_only BEFORE UPDATE OR DELETE ON epcis_what
    FOR EACH ROW EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER epcis_what_no_truncate BEFORE TRUNCATE ON epcis_what
    FOR EACH STATEMENT EXECUTE FUNCTION trace_refuse_change();

-- GS1's capture interface answers 202 with a job; ours are finished when the answer is sent.
CREATE TABLE epcis_capture_jobs (
    id             text PRIMARY KEY,
    principal      text NOT NULL,           -- role:id of the credential that posted the document
    behaviour      text NOT NULL CHECK (behaviour IN ('rollback', 'proceed')),
    created_at     timestamptz NOT NULL,
    finished_at    timestamptz NOT NULL,
    success        boolean NOT NULL,
    event_count    integer NOT NULL,
    captured       integer NOT NULL,
    errors         jsonb NOT NULL DEFAULT '[]'::jsonb
);
CREATE INDEX epcis_capture_jobs_principal_idx ON epcis_capture_jobs (principal, created_at);

-- Named queries (GS1's /queries): a query definition kept under a name, per credential, until deleted.
CREATE TABLE epcis_queries (
    owner       text NOT NULL,              -- role:id of the credential that created it
    name        text NOT NULL,
    query       jsonb NOT NULL,             -- the definition as sent (GS1's query schema)
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, name)
);

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'traceability_runtime') THEN
        GRANT SELECT, INSERT ON epcis_events, epcis_what, epcis_capture_jobs TO traceability_runtime;
        GRANT SELECT, INSERT, DELETE ON epcis_queries TO traceability_runtime;
    END IF;
END
$$;
