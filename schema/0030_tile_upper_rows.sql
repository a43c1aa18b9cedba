-- Each full level-0 tile keeps, beside its 256 hashes, its upper rows: the node hashes 4 to 7 levels above
-- them (16 + 8 + 4 + 2 = 30 hashes, 960 bytes; tile_levels.upper_rows). An inclusion proof reads them in the
-- same row as its leaf's group of 16 hashes, so the first proof of a leaf in a tile no process has seen
-- costs no second read of the 8 KB tile and no hashing of its 255 nodes. The sequencer writes them with
-- each tile it completes; tiles completed before this migration are filled by the sequencer in the
-- background (proofs compute them from the tile until then). They are derived: `traceability verify`
-- recomputes them from the leaves like the tiles themselves.
ALTER TABLE log_tiles ADD COLUMN upper bytea;
ALTER TABLE log_tiles ADD CONSTRAINT log_tiles_upper_rows
    CHECK (upper IS NULL OR (level = 0 AND width = 256 AND length(upper) = 960));

-- A full tile never changes, except that its upper rows may be written once where they are missing.
CREATE OR REPLACE FUNCTION trace_tile_grows_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.width = 256 AND OLD.upper IS NULL AND NEW.upper IS NOT NULL
       AND (NEW.log_id, NEW.level, NEW.idx, NEW.width) = (OLD.log_id, OLD.level, OLD.idx, OLD.width)
       AND NEW.hashes = OLD.hashes THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'DELETE' OR OLD.width = 256 OR NEW.width < OLD.width
       OR substring(NEW.hashes FROM 1 FOR length(OLD.hashes)) <> OLD.hashes
       OR NEW.upper IS DISTINCT FROM OLD.upper AND OLD.upper IS NOT NULL THEN
        RAISE EXCEPTION 'log tile (%, %) may only grow: % refused', OLD.level, OLD.idx, TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
