-- Registration of content fetched from elsewhere: the durable state machine of DESIGN.md
-- invariant 5. A version whose `source` is set stays `registering` until a worker has fetched,
-- verified, validated and compiled its content. Workers lease a row (`lease_owner`,
-- `lease_until`, renewed while the attempt runs); a lapsed lease (a killed worker) is free to
-- take again. `next_attempt_at` holds the backoff between attempts.

ALTER TABLE pipeline_versions ADD COLUMN source TEXT;
ALTER TABLE pipeline_versions ADD COLUMN next_attempt_at BIGINT;
ALTER TABLE pipeline_versions ADD COLUMN lease_owner TEXT;
ALTER TABLE pipeline_versions ADD COLUMN lease_until BIGINT;

CREATE INDEX pipeline_versions_due ON pipeline_versions (state, next_attempt_at);
