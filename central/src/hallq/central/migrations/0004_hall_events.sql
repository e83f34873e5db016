-- 4: what else a hall ships (issue 15): its devices' events (the controller's migration 9), each closed day's
-- figures as the hall's own report has them (the controller's migration 9), and the follow-ups' call-back notes
-- of the hall dashboard (dashboard.db, a stream of its own). Partitioned by month like the rest of the record.

CREATE TABLE device_events (              -- a device's status or hardware problems changed, as the controller saw it
    hall text NOT NULL,
    day date NOT NULL,                    -- the hall's local date of `at`
    id bigint NOT NULL,
    at timestamptz NOT NULL,
    device text NOT NULL,
    role text NOT NULL,
    window_no integer,
    listed boolean NOT NULL,
    status text NOT NULL,                 -- online | offline | stopped | never_seen, after the change
    problems jsonb NOT NULL,              -- ["paper_out", "reader_offline:idcard", ...]: after the change
    change text NOT NULL,                 -- status | health
    src_stream text NOT NULL,
    src_seq bigint NOT NULL,
    PRIMARY KEY (hall, day, id)
) PARTITION BY RANGE (day);
CREATE INDEX ON device_events (day, hall) WHERE status = 'offline';

CREATE TABLE daily_figures (              -- a closed day's figures as the hall's report has them (hallq.shared Stats)
    hall text NOT NULL,
    day date NOT NULL,
    at timestamptz NOT NULL,
    figures jsonb NOT NULL,
    src_stream text NOT NULL,
    src_seq bigint NOT NULL,
    PRIMARY KEY (hall, day)
) PARTITION BY RANGE (day);

CREATE TABLE followup_notes (             -- the hall dashboard's call-back notes on a follow-up
    hall text NOT NULL,
    day date NOT NULL,                    -- the UTC date of `at`
    id bigint NOT NULL,
    followup_id bigint NOT NULL,
    at timestamptz NOT NULL,
    "user" text NOT NULL,
    note text NOT NULL,
    src_stream text NOT NULL,
    src_seq bigint NOT NULL,
    PRIMARY KEY (hall, day, id)
) PARTITION BY RANGE (day);
CREATE INDEX ON followup_notes (hall, followup_id);
