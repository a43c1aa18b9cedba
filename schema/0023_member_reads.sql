-- A member ledger reading a trace here (docs/federation.md, "Tracing across ledgers") is recorded in the access
-- log like any other reader of full records: its kind is 'member', its name the member's origin.
ALTER TABLE access_log DROP CONSTRAINT access_log_actor_kind_check;
ALTER TABLE access_log ADD CONSTRAINT access_log_actor_kind_check
    CHECK (actor_kind IN ('token', 'user', 'device', 'station', 'member'));
