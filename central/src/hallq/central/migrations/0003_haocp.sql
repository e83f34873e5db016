-- 3: tickets carry `vouched` (the hall's migration 6); the 好差评 upload moves to the centre when the city says
-- so (halls.haocp_central, `hallq central haocp on HALL`): every rating's record as its hall made it (the hall's
-- area code and code scheme), with the centre's upload status. Partitioned by month of the rating's day.

ALTER TABLE tickets ADD COLUMN vouched text;
ALTER TABLE halls ADD COLUMN haocp_central boolean NOT NULL DEFAULT false;

CREATE TABLE haocp_uploads (
    hall text NOT NULL,
    day date NOT NULL,                      -- the local date the record was made (the rating's day)
    rating_id bigint NOT NULL,
    key text NOT NULL,                      -- the province's idempotency key (the hall's, unchanged)
    record text NOT NULL,                   -- the JSON body the province receives
    created_at timestamptz NOT NULL,
    -- 'hall': the hall uploads it itself; 'pending' / 'sent' / 'rejected': the centre's upload
    status text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    next_try_at timestamptz,
    sent_at timestamptz,
    answer text,
    src_stream text NOT NULL,
    src_seq bigint NOT NULL,
    PRIMARY KEY (hall, day, rating_id)
) PARTITION BY RANGE (day);
CREATE INDEX ON haocp_uploads (created_at) WHERE status = 'pending';
