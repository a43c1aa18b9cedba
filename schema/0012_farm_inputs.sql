-- Production records at the farm (生产记录) and the registry of inputs with their safety intervals
-- (安全间隔期 for pesticides, 休药期 for veterinary drugs and feed additives). See docs/supply-chain.md.

-- The registry the administrator keeps: one entry per registration number (农药登记证号, 兽药批准文号,
-- 饲料添加剂批准文号). An entry may be corrected; every production record keeps its own copy of the
-- interval and its source, so a correction never changes what was recorded.
CREATE TABLE input_products (
    registration_no   text PRIMARY KEY CHECK (length(registration_no) BETWEEN 1 AND 40),
    kind              text NOT NULL CHECK (kind IN ('pesticide', 'fertiliser', 'feed', 'feed_additive',
                                                    'veterinary_drug', 'vaccine')),
    name_zh           text NOT NULL,
    name_en           text,
    active_ingredient text,
    applies_to        text,
    interval_days     integer NOT NULL CHECK (interval_days BETWEEN 0 AND 3650),
    source            text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (interval_days = 0 OR source IS NOT NULL)
);

-- What went into a plot, a pen or a herd. Append-only: a wrong record is answered by a new one.
CREATE TABLE farm_inputs (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    record_id         uuid NOT NULL UNIQUE,
    node_id           bigint NOT NULL REFERENCES nodes (id),
    device_id         bigint REFERENCES devices (id),
    unit              text NOT NULL,
    unit_kind         text NOT NULL CHECK (unit_kind IN ('plot', 'pen', 'herd')),
    kind              text NOT NULL CHECK (kind IN ('pesticide', 'fertiliser', 'feed', 'feed_additive',
                                                    'veterinary_drug', 'vaccine')),
    registration_no   text,
    product_name      text NOT NULL,
    active_ingredient text,
    dose              numeric,
    dose_uom          text,
    animals           integer CHECK (animals > 0),
    applied_on        date NOT NULL,
    interval_days     integer NOT NULL CHECK (interval_days BETWEEN 0 AND 3650),
    safe_from         date NOT NULL,
    interval_source   text,
    note              text,
    content           jsonb NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (safe_from = applied_on + interval_days)
);
CREATE INDEX farm_inputs_unit_idx ON farm_inputs (node_id, unit, applied_on);
CREATE TRIGGER farm_inputs_append_only BEFORE UPDATE OR DELETE ON farm_inputs
    FOR EACH ROW EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER farm_inputs_no_truncate BEFORE TRUNCATE ON farm_inputs
    FOR EACH STATEMENT EXECUTE FUNCTION trace_refuse_change();

-- Batches a farm opened inside a safety interval because it insisted (the reason is on the opening
-- event, which also lists the inputs). The analyzer flags the farm and every node that receives the
-- batch or anything made from it.
CREATE TABLE interval_violations (
    batch_id   bigint PRIMARY KEY REFERENCES batches (id),
    event_id   uuid NOT NULL REFERENCES events (event_id),
    reason     text NOT NULL,
    inputs     jsonb NOT NULL,
    opened_on  date NOT NULL
);
CREATE TRIGGER interval_violations_append_only BEFORE UPDATE OR DELETE ON interval_violations
    FOR EACH ROW EXECUTE FUNCTION trace_refuse_change();
CREATE TRIGGER interval_violations_no_truncate BEFORE TRUNCATE ON interval_violations
    FOR EACH STATEMENT EXECUTE FUNCTION trace_refuse_change();

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'traceability_runtime') THEN
        GRANT SELECT, INSERT, UPDATE ON input_products TO traceability_runtime;
        GRANT SELECT, INSERT ON farm_inputs, interval_violations TO traceability_runtime;
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO traceability_runtime;
    END IF;
END
$$;
