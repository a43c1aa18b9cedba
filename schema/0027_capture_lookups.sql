-- What the capture statement (events_repo._APPEND) reads for each event, made cheaper.
--
-- A chain head keeps its batch's opening time: the event time of the batch's first event (seq 1), which the
-- statement compares each event's time with (domain.bounds.OPENING_TOLERANCE). It was read from that event
-- through the (batch_id, seq) index, a probe of the largest index and a heap page of the largest table for every
-- event captured (about 2-3 us of CPU each). It is written with the head when the first event is written with
-- it (services/recording.py) and by the capture statement when it writes a batch's first event; elsewhere it is
-- NULL and the statement reads the event as before, so the check is the same whichever way the batch was
-- opened. The first event of a batch never changes (events are append-only), so neither does this copy of its
-- time. Filled here for the batches already opened.
--
-- A receipt takes what it received off the custody row's quantity in transit, when there is one; most custody
-- rows have nothing in transit, and the update looked for its row by reading every custody row (the planner's
-- choice while the table is small), in every statement with a receipt in it. An index of the rows that have
-- something in transit or are a shipment's destination finds them directly. Such a row's update (shipping,
-- receiving) now changes an indexed value, so it is no longer HOT: one index entry more for each of those
-- events, against a read of the whole table for every statement holding a receipt.
ALTER TABLE batch_heads ADD COLUMN opened_at timestamptz;
UPDATE batch_heads h SET opened_at = o.event_time FROM events o WHERE o.batch_id = h.batch_id AND o.seq = 1;
CREATE INDEX batch_custody_in_transit_idx ON batch_custody (batch_id, node_id)
    WHERE relation = 'destination' OR in_transit > 0;
