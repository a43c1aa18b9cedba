-- Hardening: credentials that end, sign-in limits counted in the database, an append-only access
-- log, what stations report about their queues, and recalls that name the authority.

-- API credentials: an expiry, the authority a regulator acts for (named on public records instead
-- of the account), and which credential replaced a rotated one.
ALTER TABLE api_tokens
    ADD COLUMN expires_at  timestamptz,
    ADD COLUMN authority   text CHECK (length(authority) BETWEEN 1 AND 100),
    ADD COLUMN replaced_by bigint REFERENCES api_tokens (id);
UPDATE api_tokens SET authority = name WHERE role = 'regulator' AND authority IS NULL;

ALTER TABLE console_users
    ADD COLUMN authority           text CHECK (length(authority) BETWEEN 1 AND 100),
    ADD COLUMN password_changed_at timestamptz;

-- Every server process that caches credentials listens for changes to them, and says here which
-- change it last acted on: a revocation waits until every live process has dropped what it cached.
-- Unlogged: after a crash every process reconnects and registers again.
CREATE SEQUENCE credential_changes;
CREATE UNLOGGED TABLE credential_listeners (
    listener  text PRIMARY KEY CHECK (length(listener) <= 64),
    acked     bigint NOT NULL,
    seen_at   timestamptz NOT NULL
);

-- Sign-in limits. One row per counted key: ``pair`` (account name and source address), ``source``
-- (an address, whatever names it tries) and ``account`` (a name, from every source). Each failed or
-- refused attempt is charged with one atomic upsert before the password is checked, so parallel
-- attempts cannot all slip under the limit; a quiet spell of the window's length starts it again.
CREATE TABLE auth_throttle (
    scope         text NOT NULL CHECK (scope IN ('pair', 'source', 'account', 'credential')),
    key           text NOT NULL CHECK (length(key) <= 300),
    failures      integer NOT NULL CHECK (failures >= 0),
    last_failure  timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX auth_throttle_last_idx ON auth_throttle (last_failure);

-- Addresses each console user has signed in from: the account-wide limit never shuts these out,
-- so a flood of guesses from elsewhere cannot lock a regulator out of their own desk.
CREATE TABLE sign_in_sources (
    user_id         bigint NOT NULL REFERENCES console_users (id),
    source          text NOT NULL,
    last_success_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, source)
);

-- Who read what: every full (commercial) view, forward trace, export and recall, with who, when and
-- from where. Public readers are not recorded. Append-only like the ledger.
CREATE TABLE access_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL,
    actor_kind   text NOT NULL CHECK (actor_kind IN ('token', 'user', 'device', 'station')),
    actor_id     bigint NOT NULL,
    actor_role   text NOT NULL,
    actor_name   text NOT NULL,
    authority    text,
    action       text NOT NULL CHECK (action IN ('view', 'trace', 'export', 'recall')),
    target       text NOT NULL,
    detail       jsonb NOT NULL DEFAULT '{}'::jsonb,
    source       text,
    request_id   text NOT NULL
);
CREATE INDEX access_log_at_idx ON access_log (at);
CREATE INDEX access_log_target_idx ON access_log (target, at);
CREATE INDEX access_log_actor_idx ON access_log (actor_kind, actor_id, at);
CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER access_log_no_truncate BEFORE TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION trace_refuse_change();

-- The latest queue report of each station (sent with a signed heartbeat): how much waits to be
-- uploaded and since when, for /metrics.
CREATE TABLE station_reports (
    device_id          bigint PRIMARY KEY REFERENCES devices (id),
    pending            integer NOT NULL CHECK (pending >= 0),
    oldest_pending_at  timestamptz,
    codes_left         integer CHECK (codes_left >= 0),
    reported_at        timestamptz NOT NULL
);

-- Recalls name the authority on the public list; issued_by (the account) stays for oversight.
ALTER TABLE recalls ADD COLUMN authority text;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'traceability_runtime') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON auth_throttle, credential_listeners TO traceability_runtime;
        GRANT SELECT, INSERT, UPDATE ON sign_in_sources, station_reports TO traceability_runtime;
        GRANT SELECT, INSERT ON access_log TO traceability_runtime;
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO traceability_runtime;
    END IF;
END
$$;
