-- Scanner stations: Ed25519 keys bound to devices, one-time enrolment codes, blocks of trace
-- codes leased to a station for offline issue, and the signed uploads that carried events.
--
-- Evidence is append-only in the database itself: the signed uploads and the events they carried
-- (so a signature can be checked again years later), and the leases (so a code printed offline
-- is always attributable to the station that held it). A station key row keeps its public key
-- forever; only its retired_at / revoked_at may be set, once.

CREATE TABLE station_keys (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_id        text NOT NULL UNIQUE CHECK (key_id ~ '^st_[0-9a-f]{32}$'),
    device_id     bigint NOT NULL REFERENCES devices (id),
    public_key    bytea NOT NULL UNIQUE CHECK (length(public_key) = 32),
    replaces      bigint REFERENCES station_keys (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    retired_at    timestamptz,   -- replaced by a rotation: no longer accepted for new requests
    revoked_at    timestamptz    -- revoked by an administrator
);
CREATE INDEX station_keys_device_idx ON station_keys (device_id);
-- At most one live key per station.
CREATE UNIQUE INDEX station_keys_one_live_idx ON station_keys (device_id)
    WHERE retired_at IS NULL AND revoked_at IS NULL;

CREATE FUNCTION trace_station_key_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
       OR NEW.key_id <> OLD.key_id OR NEW.device_id <> OLD.device_id
       OR NEW.public_key <> OLD.public_key OR NEW.replaces IS DISTINCT FROM OLD.replaces
       OR NEW.created_at <> OLD.created_at
       OR (OLD.retired_at IS NOT NULL AND NEW.retired_at IS DISTINCT FROM OLD.retired_at)
       OR (OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at) THEN
        RAISE EXCEPTION 'station key % may only be retired or revoked: % refused', OLD.key_id, TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER station_keys_guard BEFORE UPDATE OR DELETE ON station_keys
    FOR EACH ROW EXECUTE FUNCTION trace_station_key_guard();
CREATE TRIGGER station_keys_no_truncate BEFORE TRUNCATE ON station_keys
    FOR EACH STATEMENT EXECUTE FUNCTION trace_refuse_change();

-- One-time enrolment codes. Only the SHA-256 of the code is kept (128 random bits).
CREATE TABLE station_enrolments (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id     bigint NOT NULL REFERENCES devices (id),
    code_hash     bytea NOT NULL UNIQUE CHECK (length(code_hash) = 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    used_at       timestamptz,
    key_id        bigint REFERENCES station_keys (id)
);

-- Blocks of trace-code serials for offline issue. A block is BLOCK_SIZE (100) consecutive
-- serials starting at 5000000000000 + 100 * nextval('station_block_seq'): blocks never overlap
-- and a block number is never handed out twice, whatever the area code.
CREATE SEQUENCE station_block_seq MINVALUE 0 START 0 MAXVALUE 49999999999 CACHE 1 NO CYCLE;

CREATE TABLE code_leases (
    block_no      bigint PRIMARY KEY CHECK (block_no >= 0),
    device_id     bigint NOT NULL REFERENCES devices (id),
    node_id       bigint NOT NULL REFERENCES nodes (id),
    area_code     text NOT NULL CHECK (area_code ~ '^[1-8][0-9]{5}$'),
    first_serial  bigint NOT NULL UNIQUE CHECK (first_serial = 5000000000000 + 100 * block_no),
    size          integer NOT NULL CHECK (size = 100),
    leased_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX code_leases_device_idx ON code_leases (device_id, leased_at);

-- Each signed request that carried events: exactly what was signed, so the signature can be
-- verified again from these columns alone (docs/scanners.md gives the signing string).
CREATE TABLE signed_uploads (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    station_key   bigint NOT NULL REFERENCES station_keys (id),
    device_id     bigint NOT NULL REFERENCES devices (id),
    method        text NOT NULL,
    path          text NOT NULL,
    created       bigint NOT NULL,          -- the signer's clock, Unix seconds
    body          bytea NOT NULL,           -- the exact request body
    body_digest   bytea NOT NULL CHECK (length(body_digest) = 32),
    signature     bytea NOT NULL CHECK (length(signature) = 64),
    received_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX signed_uploads_device_idx ON signed_uploads (device_id, received_at);

CREATE TABLE signed_upload_events (
    upload_id     bigint NOT NULL REFERENCES signed_uploads (id),
    event_id      uuid NOT NULL REFERENCES events (event_id),
    PRIMARY KEY (upload_id, event_id)
);
CREATE INDEX signed_upload_events_event_idx ON signed_upload_events (event_id);

-- The one mutable summary per station: when it last synchronised.
CREATE TABLE station_sync (
    device_id     bigint PRIMARY KEY REFERENCES devices (id),
    last_sync_at  timestamptz NOT NULL,
    uploads       bigint NOT NULL DEFAULT 0,
    events        bigint NOT NULL DEFAULT 0
);

CREATE TRIGGER code_leases_append_only BEFORE UPDATE OR DELETE ON code_leases
    FOR EACH ROW EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER code_leases_no_truncate BEFORE TRUNCATE ON code_leases
    FOR EACH STATEMENT EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER signed_uploads_append_only BEFORE UPDATE OR DELETE ON signed_uploads
    FOR EACH ROW EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER signed_uploads_no_truncate BEFORE TRUNCATE ON signed_uploads
    FOR EACH STATEMENT EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER signed_upload_events_append_only BEFORE UPDATE OR DELETE ON signed_upload_events
    FOR EACH ROW EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER signed_upload_events_no_truncate BEFORE TRUNCATE ON signed_upload_events
    FOR EACH STATEMENT EXECUTE FUNCTION trace_refuse_change();

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'traceability_runtime') THEN
        GRANT SELECT, INSERT ON code_leases, signed_uploads, signed_upload_events TO traceability_runtime;
        GRANT SELECT, INSERT, UPDATE ON station_keys, station_enrolments, station_sync TO traceability_runtime;
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO traceability_runtime;
    END IF;
END
$$;
