-- People who sign in to the web pages: regulator console accounts, their sessions, and every
-- sign-in attempt (for lockout and for the record). Vendor stalls sign in with their scanner
-- device credential; their sessions live in the same table, bound to the device instead.
--
-- Passwords are stored only as argon2id hashes (PHC string). Session tokens are 256 random bits
-- kept in an HttpOnly cookie; only their SHA-256 is stored here.

CREATE TABLE console_users (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    role           text NOT NULL CHECK (role IN ('regulator', 'admin')),
    password_hash  text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    created_at     timestamptz NOT NULL DEFAULT now(),
    disabled_at    timestamptz
);

CREATE TABLE web_sessions (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash     bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    csrf_token     text NOT NULL,
    user_id        bigint REFERENCES console_users (id),
    -- A vendor session holds the SHA-256 of the device credential it signed in with, so revoking
    -- the device ends the session at once.
    device_token_hash bytea CHECK (length(device_token_hash) = 32),
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    ended_at       timestamptz,
    CHECK ((user_id IS NULL) <> (device_token_hash IS NULL))
);
CREATE INDEX web_sessions_user_idx ON web_sessions (user_id);

-- One row per sign-in attempt; the account name is kept as typed (it may name nobody).
CREATE TABLE login_attempts (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           text NOT NULL,
    remote         text,
    succeeded      boolean NOT NULL,
    attempted_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_attempts_name_time_idx ON login_attempts (name, attempted_at);

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'traceability_runtime') THEN
        GRANT SELECT, INSERT, UPDATE ON console_users, web_sessions TO traceability_runtime;
        GRANT SELECT, INSERT ON login_attempts TO traceability_runtime;
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO traceability_runtime;
    END IF;
END
$$;
