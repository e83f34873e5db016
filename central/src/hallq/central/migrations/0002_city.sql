-- 2: the city dashboard's own tables (hallq.central.web.figures) and what it needs of a hall: its English name
-- and its time zone (a hall's half hours and "today" are its own local ones).

ALTER TABLE halls ADD COLUMN name_en text;
ALTER TABLE halls ADD COLUMN timezone text NOT NULL DEFAULT 'Asia/Shanghai';

-- city_figures: one day of one hall condensed per slice (hall, category, item, clerk, half_hour) and key:
-- counts, sums of waits and service times, ratings per level and a wait histogram (w00..w76, buckets of
-- hallq.central.web.figures.EDGES). Written only by figures.rollup (replaces a hall-day, never adds to it).
-- city_rollups: when each hall-day was last rolled up. city_rollup_mark: the ingest time rolled up so far.
CREATE TABLE city_figures (
    day date NOT NULL, kind text NOT NULL, hall text NOT NULL, key text NOT NULL, name text,
    issued integer NOT NULL, called integer NOT NULL, served integer NOT NULL, noshow integer NOT NULL,
    transferred integer NOT NULL, wait_n integer NOT NULL, wait_sum double precision NOT NULL,
    service_n integer NOT NULL, service_sum double precision NOT NULL,
    r_very_satisfied integer NOT NULL, r_satisfied integer NOT NULL, r_basic integer NOT NULL, r_dissatisfied integer NOT NULL, r_very_dissatisfied integer NOT NULL,
    w00 integer NOT NULL, w01 integer NOT NULL, w02 integer NOT NULL, w03 integer NOT NULL, w04 integer NOT NULL, w05 integer NOT NULL, w06 integer NOT NULL, w07 integer NOT NULL, w08 integer NOT NULL, w09 integer NOT NULL, w10 integer NOT NULL, w11 integer NOT NULL, w12 integer NOT NULL, w13 integer NOT NULL, w14 integer NOT NULL, w15 integer NOT NULL, w16 integer NOT NULL, w17 integer NOT NULL, w18 integer NOT NULL, w19 integer NOT NULL, w20 integer NOT NULL, w21 integer NOT NULL, w22 integer NOT NULL, w23 integer NOT NULL, w24 integer NOT NULL, w25 integer NOT NULL, w26 integer NOT NULL, w27 integer NOT NULL, w28 integer NOT NULL, w29 integer NOT NULL, w30 integer NOT NULL, w31 integer NOT NULL, w32 integer NOT NULL, w33 integer NOT NULL, w34 integer NOT NULL, w35 integer NOT NULL, w36 integer NOT NULL, w37 integer NOT NULL, w38 integer NOT NULL, w39 integer NOT NULL, w40 integer NOT NULL, w41 integer NOT NULL, w42 integer NOT NULL, w43 integer NOT NULL, w44 integer NOT NULL, w45 integer NOT NULL, w46 integer NOT NULL, w47 integer NOT NULL, w48 integer NOT NULL, w49 integer NOT NULL, w50 integer NOT NULL, w51 integer NOT NULL, w52 integer NOT NULL, w53 integer NOT NULL, w54 integer NOT NULL, w55 integer NOT NULL, w56 integer NOT NULL, w57 integer NOT NULL, w58 integer NOT NULL, w59 integer NOT NULL, w60 integer NOT NULL, w61 integer NOT NULL, w62 integer NOT NULL, w63 integer NOT NULL, w64 integer NOT NULL, w65 integer NOT NULL, w66 integer NOT NULL, w67 integer NOT NULL, w68 integer NOT NULL, w69 integer NOT NULL, w70 integer NOT NULL, w71 integer NOT NULL, w72 integer NOT NULL, w73 integer NOT NULL, w74 integer NOT NULL, w75 integer NOT NULL, w76 integer NOT NULL,
    PRIMARY KEY (day, kind, hall, key)
);
CREATE TABLE city_rollup_mark (
    one boolean PRIMARY KEY DEFAULT true CHECK (one), received timestamptz NOT NULL
);
CREATE TABLE city_rollups (
    day date NOT NULL, hall text NOT NULL, rolled_at timestamptz NOT NULL, PRIMARY KEY (day, hall)
);
-- city_hall_configs: each hall's public configuration (schemas.HallConfig, as its retained `config` topic last
-- said), kept so that category names are known while a hall is offline.
CREATE TABLE city_hall_configs (
    hall text PRIMARY KEY, config jsonb NOT NULL, seen_at timestamptz NOT NULL
);
