-- 1: the halls, their outbox streams, and every hall's record, partitioned by month (native RANGE partitions).
-- The record tables keep the hall's column names (window -> window_no: WINDOW is reserved in SQL) and add
-- hall (whose record) and src_stream/src_seq (the outbox row this version of the row came from).
-- Partitions (<table>_pYYYYMM) are made by hallq.central.db.ensure_months, never by hand.

CREATE TABLE halls (
    id text PRIMARY KEY,
    name text NOT NULL,
    token_sha256 bytea NOT NULL UNIQUE,   -- SHA-256 of the hall's 256-bit random token (the token is never stored)
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE TABLE streams (
    hall text NOT NULL REFERENCES halls (id),
    stream text NOT NULL,
    acked bigint NOT NULL DEFAULT 0,      -- the last seq applied: seq acked + 1 is the only one accepted next
    records bigint NOT NULL DEFAULT 0,
    first_at timestamptz NOT NULL DEFAULT now(),
    last_at timestamptz,
    PRIMARY KEY (hall, stream)
);

CREATE TABLE batches (                    -- one row per batch applied: what came when, and how late
    hall text NOT NULL,
    stream text NOT NULL,
    first_seq bigint NOT NULL,
    last_seq bigint NOT NULL,
    records integer NOT NULL,
    queued_first timestamptz NOT NULL,
    queued_last timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (received_at);
CREATE INDEX ON batches (hall, received_at);

CREATE TABLE tickets (
    hall text NOT NULL,
    day date NOT NULL,
    number text NOT NULL,
    category text NOT NULL,
    seq integer NOT NULL,
    issued_at timestamptz NOT NULL,
    priority text,
    channel text,
    person text,
    appointment text,
    client text,
    est_wait_min integer,
    ahead integer,
    status text NOT NULL,
    queue text NOT NULL,
    to_window integer,
    transferred_at timestamptz,
    window_no integer,
    called_at timestamptz,
    recalls integer NOT NULL DEFAULT 0,
    first_called_at timestamptz,
    finished_at timestamptz,
    rated boolean NOT NULL DEFAULT false,
    slot_start timestamptz,
    slot_end timestamptz,
    src_stream text NOT NULL,
    src_seq bigint NOT NULL,
    PRIMARY KEY (hall, day, number)
) PARTITION BY RANGE (day);
CREATE INDEX ON tickets (day, hall, category);

CREATE TABLE calls (
    hall text NOT NULL,
    day date NOT NULL,
    id bigint NOT NULL,
    number text NOT NULL,
    category text NOT NULL,
    queue text NOT NULL,
    window_no integer NOT NULL,
    staff_id text,
    staff_name text,
    called_at timestamptz NOT NULL,
    wait_s double precision NOT NULL,
    first boolean NOT NULL,
    priority text,
    recalls integer NOT NULL DEFAULT 0,
    ended_at timestamptz,
    outcome text NOT NULL,
    case_id text,
    item_code text,
    item_name text,
    case_kind text,
    src_stream text NOT NULL,
    src_seq bigint NOT NULL,
    PRIMARY KEY (hall, day, id)
) PARTITION BY RANGE (day);
CREATE INDEX ON calls (day, hall);

CREATE TABLE ratings (
    hall text NOT NULL,
    day date NOT NULL,
    id bigint NOT NULL,
    ticket text NOT NULL,
    window_no integer NOT NULL,
    level text NOT NULL,
    at timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    client text NOT NULL,
    staff_id text,
    staff_name text,
    call_id bigint,
    case_id text,
    item_code text,
    src_stream text NOT NULL,
    src_seq bigint NOT NULL,
    PRIMARY KEY (hall, day, id)
) PARTITION BY RANGE (day);
CREATE INDEX ON ratings (day, hall);

CREATE TABLE followups (                  -- partitioned by the day of the rating it follows up
    hall text NOT NULL,
    day date NOT NULL,
    id bigint NOT NULL,
    rating_id bigint NOT NULL,
    ticket text NOT NULL,
    window_no integer NOT NULL,
    level text NOT NULL,
    rated_at timestamptz NOT NULL,
    opened_at timestamptz NOT NULL,
    due date NOT NULL,
    staff_id text,
    staff_name text,
    case_id text,
    item_code text,
    closed_at timestamptz,
    called_back_by text,
    action text,
    src_stream text NOT NULL,
    src_seq bigint NOT NULL,
    PRIMARY KEY (hall, day, id)
) PARTITION BY RANGE (day);
CREATE INDEX ON followups (due) WHERE closed_at IS NULL;

CREATE TABLE staff_sessions (             -- partitioned by the day the session started (the hall's local date)
    hall text NOT NULL,
    day date NOT NULL,
    id bigint NOT NULL,
    window_no integer NOT NULL,
    staff_id text NOT NULL,
    staff_name text NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at timestamptz,
    src_stream text NOT NULL,
    src_seq bigint NOT NULL,
    PRIMARY KEY (hall, day, id)
) PARTITION BY RANGE (day);
