-- The transparency log: one append-only Merkle log (RFC 9162 hashing, C2SP tlog-tiles layout)
-- over every accepted event, with signed checkpoints and witness cosignatures.
--
-- Capture never waits on the log: a statement trigger copies each new event's id and chain hash
-- into log_queue in the capturing transaction, so an event is queued exactly when it commits,
-- whatever order transactions commit in. The sequencer integrates the queue in batches.

CREATE TABLE logs (
    id          smallint PRIMARY KEY,
    origin      text NOT NULL UNIQUE,
    log_id      text NOT NULL UNIQUE,   -- hex SHA-256 of the origin (docs/ledger.md)
    public_key  text NOT NULL,          -- the checkpoint verifier key, C2SP note form
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The head only moves forward, by compare-and-set on size.
CREATE TABLE log_heads (
    log_id      smallint PRIMARY KEY REFERENCES logs (id),
    size        bigint NOT NULL CHECK (size >= 0),
    root        bytea NOT NULL CHECK (length(root) = 32),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE log_queue (
    event_pk    bigint PRIMARY KEY,
    hash        bytea NOT NULL
);

CREATE FUNCTION trace_queue_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO log_queue (event_pk, hash) SELECT id, hash FROM new_events;
    RETURN NULL;
END
$$;
CREATE TRIGGER events_to_log AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION trace_queue_events();

-- Leaf data is the event's 32-byte chain hash; leaf_hash = SHA-256(0x00 || data).
CREATE TABLE log_leaves (
    log_id      smallint NOT NULL REFERENCES logs (id),
    leaf_index  bigint NOT NULL CHECK (leaf_index >= 0),
    event_pk    bigint NOT NULL UNIQUE REFERENCES events (id),
    leaf_hash   bytea NOT NULL CHECK (length(leaf_hash) = 32),
    integrated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (log_id, leaf_index)
);

-- Tile (level, idx) holds the hashes at tree level 8*level, idx*256 .. idx*256+width-1.
-- Derived from the leaves; a partial tile is rewritten as it grows, a full one never changes.
CREATE TABLE log_tiles (
    log_id      smallint NOT NULL REFERENCES logs (id),
    level       smallint NOT NULL CHECK (level >= 0),
    idx         bigint NOT NULL CHECK (idx >= 0),
    width       smallint NOT NULL CHECK (width BETWEEN 1 AND 256),
    hashes      bytea NOT NULL CHECK (length(hashes) = 32 * width),
    PRIMARY KEY (log_id, level, idx)
);

CREATE FUNCTION trace_tile_grows_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD.width = 256 OR NEW.width < OLD.width
       OR substring(NEW.hashes FROM 1 FOR length(OLD.hashes)) <> OLD.hashes THEN
        RAISE EXCEPTION 'log tile (%, %) may only grow: % refused', OLD.level, OLD.idx, TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER log_tiles_grow_only BEFORE UPDATE OR DELETE ON log_tiles
    FOR EACH ROW EXECUTE FUNCTION trace_tile_grows_only();
CREATE TRIGGER log_tiles_no_truncate BEFORE TRUNCATE ON log_tiles
    FOR EACH STATEMENT EXECUTE FUNCTION trace_refuse_change();

CREATE TABLE checkpoints (
    log_id      smallint NOT NULL REFERENCES logs (id),
    size        bigint NOT NULL CHECK (size >= 0),
    root        bytea NOT NULL CHECK (length(root) = 32),
    note        text NOT NULL,        -- the signed note exactly as published
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (log_id, size)
);

CREATE TABLE witnesses (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    verifier_key  text NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);

CREATE TABLE cosignatures (
    log_id      smallint NOT NULL,
    size        bigint NOT NULL,
    witness_id  bigint NOT NULL REFERENCES witnesses (id),
    line        text NOT NULL,        -- the cosignature line as the witness sent it
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (log_id, size, witness_id),
    FOREIGN KEY (log_id, size) REFERENCES checkpoints (log_id, size)
);

-- Corrections (EPCIS errorDeclaration) are events; this index finds them for a batch view.
CREATE TABLE event_corrections (
    declared_event_id  uuid NOT NULL REFERENCES events (event_id),
    by_event_id        uuid NOT NULL REFERENCES events (event_id),
    reason             text NOT NULL,
    PRIMARY KEY (declared_event_id, by_event_id)
);

CREATE TRIGGER log_leaves_append_only BEFORE UPDATE OR DELETE ON log_leaves
    FOR EACH ROW EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER log_leaves_no_truncate BEFORE TRUNCATE ON log_leaves
    FOR EACH STATEMENT EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER cosignatures_append_only BEFORE UPDATE OR DELETE ON cosignatures
    FOR EACH ROW EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER cosignatures_no_truncate BEFORE TRUNCATE ON cosignatures
    FOR EACH STATEMENT EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER event_corrections_append_only BEFORE UPDATE OR DELETE ON event_corrections
    FOR EACH ROW EXECUTE FUNCTION trace_refuse_change();

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'traceability_runtime') THEN
        GRANT SELECT, INSERT ON log_leaves, checkpoints, cosignatures, event_corrections TO traceability_runtime;
        GRANT SELECT, INSERT, UPDATE ON logs, log_heads, log_tiles, witnesses TO traceability_runtime;
        GRANT SELECT, INSERT, DELETE ON log_queue TO traceability_runtime;
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO traceability_runtime;
    END IF;
END
$$;

-- Commercial details (prices, buyer identities) are sealed: the hashed canonical bytes carry
-- "sealed" = hex SHA-256("trace/sealed/v1" || 0x00 || salt || canonical private bytes), and the
-- salt and private bytes live here. The hashed bytes can then be published with every proof
-- without revealing prices, and regulators can still check the private part against the seal.
ALTER TABLE events ADD COLUMN private bytea;
