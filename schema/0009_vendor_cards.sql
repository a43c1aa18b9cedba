-- Stall cards: a vendor signs in to /vendor with the card's QR code, which the stall's station prints,
-- and a six-digit PIN the vendor chose at the station; never with a pasted credential.
--
-- Only hashes are kept: SHA-256 of the card's token, argon2id of the PIN. A station holds one live
-- card; a new one revokes the earlier. A session opened with a card ends when the card or its device
-- is revoked. Failed PINs are counted in login_attempts (name 'vendor-card:<id>') for the lockout.

CREATE TABLE vendor_cards (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id    bigint NOT NULL REFERENCES devices (id),
    token_hash   bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    pin_hash     text NOT NULL CHECK (pin_hash LIKE '$argon2id$%'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
CREATE UNIQUE INDEX vendor_cards_one_live_idx ON vendor_cards (device_id) WHERE revoked_at IS NULL;

ALTER TABLE web_sessions ADD COLUMN vendor_card_id bigint REFERENCES vendor_cards (id);

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'traceability_runtime') THEN
        GRANT SELECT, INSERT, UPDATE ON vendor_cards TO traceability_runtime;
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO traceability_runtime;
    END IF;
END
$$;
