-- The trigger that refuses a cycle in batch_links (0005) walks a new link's ancestors up through the links, one
-- step of its recursion per generation. A session plans that walk once and keeps the plan until PostgreSQL
-- analyzes batch_links again; a plan made while the table was small read the whole table at every step (seen
-- during a bulk load: 20 ms for one link, where a lookup in batch_links_child_idx takes microseconds). Planned
-- with sequential scans off, each step is a lookup in that index whatever the statistics say, as the analyzer's
-- reads are (storage/analysis_repo.by_key).
ALTER FUNCTION trace_refuse_cycle() SET enable_seqscan = off;
