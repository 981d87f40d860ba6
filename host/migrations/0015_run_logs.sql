-- What a run's component wrote to stdout and stderr, kept with the run once it ended: JSON
-- {"stdout": …, "stderr": …}, each stream cut to its first 64 KiB (runs::submit). NULL when
-- the run printed nothing or never executed.
ALTER TABLE runs ADD COLUMN logs TEXT;
