-- How many records the anomaly analyzer went past because a rule could not read them (each logged as
-- analyzer.event_failed with its event id). Before, such a record stopped the analyzer for good; now it is
-- counted here and served as trace_analyzer_failed_events, so an operator is alerted by the metric.
ALTER TABLE analyzer_state ADD COLUMN failed bigint NOT NULL DEFAULT 0;
