-- The public information page (/public) lists failed inspections newest first and finds enterprises and
-- stalls by the products they handled: inspections are a small share of events, so a partial index on
-- their time keeps that list from reading every event; batches by product serve the product search.
CREATE INDEX events_inspecting_time_idx ON events (event_time DESC) WHERE biz_step = 'inspecting';
CREATE INDEX batches_product_idx ON batches (product_id);
