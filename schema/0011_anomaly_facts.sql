-- What each anomaly's explanation is built from (amounts, dates, the certificate missing, the other
-- pharmacy), kept as data so the console explains it in the reader's language instead of quoting the
-- analyzer's English sentence. Rows found before this column existed keep an empty object and are
-- explained from their kind, batch and node.
ALTER TABLE anomalies ADD COLUMN facts jsonb NOT NULL DEFAULT '{}'::jsonb;
