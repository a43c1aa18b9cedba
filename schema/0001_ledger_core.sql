-- Ledger core: the registry (enterprises, nodes, operators, products, devices, credentials),
-- batches with their trace codes, and the hash-chained events.
--
-- Ledger tables (batches, batch_identifiers, events) are append-only in the database itself:
-- a trigger raises on UPDATE, DELETE and TRUNCATE, and the runtime role holds only SELECT and
-- INSERT on them. batch_heads is the one mutable piece of a chain: the latest seq and hash per
-- batch, row-locked by writers so appends to one batch are serialised and appends to different
-- batches never wait on each other.

CREATE FUNCTION trace_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TABLE enterprises (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uscc        text NOT NULL UNIQUE CHECK (uscc ~ '^[0-9A-HJ-NPQRTUWXY]{18}$'),
    name        text NOT NULL,
    name_en     text,
    contact     text,
    licences    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE SEQUENCE node_code_seq;

CREATE TABLE nodes (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code          text NOT NULL UNIQUE,
    enterprise_id bigint NOT NULL REFERENCES enterprises (id),
    node_type     text NOT NULL CHECK (node_type IN (
                      'farm', 'slaughterhouse', 'processor', 'wholesale_market', 'wholesaler',
                      'wet_market', 'supermarket', 'canteen', 'drug_manufacturer',
                      'drug_distributor', 'pharmacy', 'hospital')),
    area_code     text NOT NULL CHECK (area_code ~ '^[1-8][0-9]{5}$'),
    name_zh       text NOT NULL,
    name_en       text,
    address       text,
    latitude      double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude     double precision CHECK (longitude BETWEEN -180 AND 180),
    gln           text UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX nodes_enterprise_idx ON nodes (enterprise_id);

CREATE TABLE operators (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    node_id     bigint NOT NULL REFERENCES nodes (id),
    code        text NOT NULL,
    name        text NOT NULL,
    stall_no    text,
    contact     text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (node_id, code)
);

CREATE TABLE products (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    category        text NOT NULL CHECK (category IN ('meat', 'vegetable', 'drug', 'other')),
    goods_code      text NOT NULL UNIQUE,
    gtin            text UNIQUE CHECK (gtin ~ '^[0-9]{14}$'),
    name_zh         text NOT NULL,
    name_en         text,
    default_uom     text,
    shelf_life_days integer CHECK (shelf_life_days > 0),
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Scanner devices. The credential is shown once at registration; only its SHA-256 is kept
-- (it is 256 random bits, so a fast hash is the right tool; people's passwords are different).
CREATE TABLE devices (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    node_id       bigint NOT NULL REFERENCES nodes (id),
    enterprise_id bigint NOT NULL REFERENCES enterprises (id),
    operator_id   bigint REFERENCES operators (id),
    name          text NOT NULL,
    token_hash    bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);

-- API credentials for people and systems: administrators, regulators, enterprises.
CREATE TABLE api_tokens (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    role          text NOT NULL CHECK (role IN ('admin', 'regulator', 'enterprise')),
    name          text NOT NULL,
    enterprise_id bigint REFERENCES enterprises (id),
    token_hash    bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    CHECK ((role = 'enterprise') = (enterprise_id IS NOT NULL))
);

-- Serials for server-issued trace codes; offline blocks for stations come from their own range.
CREATE SEQUENCE trace_serial_seq MINVALUE 1 MAXVALUE 4999999999999 CACHE 1;

CREATE TABLE batches (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trace_code     text NOT NULL UNIQUE CHECK (trace_code ~ '^[1-8][0-9]{19}$'),
    product_id     bigint NOT NULL REFERENCES products (id),
    node_id        bigint NOT NULL REFERENCES nodes (id),
    device_id      bigint REFERENCES devices (id),
    open_event_id  uuid NOT NULL UNIQUE,
    open_digest    bytea NOT NULL,
    quantity       numeric NOT NULL CHECK (quantity >= 0),
    uom            text NOT NULL,
    produced_on    date,
    expires_on     date,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE batch_identifiers (
    scheme      text NOT NULL,
    value       text NOT NULL,
    batch_id    bigint NOT NULL REFERENCES batches (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scheme, value)
);
CREATE INDEX batch_identifiers_batch_idx ON batch_identifiers (batch_id);

CREATE TABLE batch_heads (
    batch_id   bigint PRIMARY KEY REFERENCES batches (id),
    seq        integer NOT NULL CHECK (seq >= 0),
    head_hash  bytea NOT NULL CHECK (length(head_hash) = 32)
);

-- One row per event. canonical holds the exact bytes that were hashed (docs/ledger.md);
-- the other columns are copies for queries and are never hashed.
CREATE TABLE events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id     uuid NOT NULL UNIQUE,
    batch_id     bigint NOT NULL REFERENCES batches (id),
    seq          integer NOT NULL CHECK (seq >= 1),
    prev_hash    bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash         bytea NOT NULL CHECK (length(hash) = 32),
    canonical    bytea NOT NULL,
    biz_step     text NOT NULL,
    node_id      bigint NOT NULL REFERENCES nodes (id),
    device_id    bigint REFERENCES devices (id),
    event_time   timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL,
    UNIQUE (batch_id, seq)
);
CREATE INDEX events_node_time_idx ON events (node_id, event_time);

CREATE TRIGGER batches_append_only BEFORE UPDATE OR DELETE ON batches
    FOR EACH ROW EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER batches_no_truncate BEFORE TRUNCATE ON batches
    FOR EACH STATEMENT EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER batch_identifiers_append_only BEFORE UPDATE OR DELETE ON batch_identifiers
    FOR EACH ROW EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER batch_identifiers_no_truncate BEFORE TRUNCATE ON batch_identifiers
    FOR EACH STATEMENT EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION trace_refuse_change();

-- The runtime role: what the serving process runs as. It may read everything, insert into the
-- ledger, and change only the registry and the chain heads. Creating it needs CREATEROLE; where
-- the migrating user lacks that, the server runs as the migrating user and says so at start.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'traceability_runtime') THEN
        CREATE ROLE traceability_runtime NOLOGIN;
    END IF;
    EXECUTE format('GRANT traceability_runtime TO %I', current_user);
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'cannot create role traceability_runtime; the server will run as %', current_user;
END
$$;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'traceability_runtime') THEN
        GRANT USAGE ON SCHEMA public TO traceability_runtime;
        GRANT SELECT, INSERT ON batches, batch_identifiers, events TO traceability_runtime;
        GRANT SELECT, INSERT, UPDATE ON enterprises, nodes, operators, products, devices,
            api_tokens, batch_heads TO traceability_runtime;
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO traceability_runtime;
        GRANT SELECT ON schema_migrations TO traceability_runtime;
    END IF;
END
$$;
