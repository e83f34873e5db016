-- 5: reports over weeks and months read few rows (hallq.central.web.figures):
-- * city_figures gains the city's own lines (hall '*', never a hall id) of the slices that span halls (item,
--   half_hour): a day of the whole city reads ~60 rows instead of ~18,000;
-- * city_spans: city_figures summed per calendar month (span 'month', day = the 1st) and per block of seven days
--   inside a month (span 'week', days 1-7, 8-14, 15-21, 22-28, 29-end; day = the block's first day), for every
--   hall and for '*'. A report covers whole months and blocks from here and only the days at its edges from
--   city_figures. Written only by figures.rollup (it rebuilds the spans of the days it rolled up);
-- * indexes for the pages: city_figures by slice and day; open follow-ups of a hall by due date; the list pages'
--   order (open: due, rated_at, hall, id; closed: closed_at, hall, id) for keyset paging.

CREATE INDEX city_figures_by_kind ON city_figures (kind, day, hall);

CREATE TABLE city_spans (
    span text NOT NULL CHECK (span IN ('week', 'month')),
    LIKE city_figures,
    PRIMARY KEY (kind, span, day, hall, key)
);

INSERT INTO city_figures (day, kind, hall, key, name,
    issued, called, served, noshow, transferred, wait_n, wait_sum, service_n, service_sum, r_very_satisfied,
    r_satisfied, r_basic, r_dissatisfied, r_very_dissatisfied, w00, w01, w02, w03, w04, w05, w06, w07, w08, w09, w10,
    w11, w12, w13, w14, w15, w16, w17, w18, w19, w20, w21, w22, w23, w24, w25, w26, w27, w28, w29, w30, w31, w32,
    w33, w34, w35, w36, w37, w38, w39, w40, w41, w42, w43, w44, w45, w46, w47, w48, w49, w50, w51, w52, w53, w54,
    w55, w56, w57, w58, w59, w60, w61, w62, w63, w64, w65, w66, w67, w68, w69, w70, w71, w72, w73, w74, w75, w76)
SELECT day, kind, '*', key, max(name),
    sum(issued), sum(called), sum(served), sum(noshow), sum(transferred), sum(wait_n), sum(wait_sum), sum(service_n),
    sum(service_sum), sum(r_very_satisfied), sum(r_satisfied), sum(r_basic), sum(r_dissatisfied),
    sum(r_very_dissatisfied), sum(w00), sum(w01), sum(w02), sum(w03), sum(w04), sum(w05), sum(w06), sum(w07),
    sum(w08), sum(w09), sum(w10), sum(w11), sum(w12), sum(w13), sum(w14), sum(w15), sum(w16), sum(w17), sum(w18),
    sum(w19), sum(w20), sum(w21), sum(w22), sum(w23), sum(w24), sum(w25), sum(w26), sum(w27), sum(w28), sum(w29),
    sum(w30), sum(w31), sum(w32), sum(w33), sum(w34), sum(w35), sum(w36), sum(w37), sum(w38), sum(w39), sum(w40),
    sum(w41), sum(w42), sum(w43), sum(w44), sum(w45), sum(w46), sum(w47), sum(w48), sum(w49), sum(w50), sum(w51),
    sum(w52), sum(w53), sum(w54), sum(w55), sum(w56), sum(w57), sum(w58), sum(w59), sum(w60), sum(w61), sum(w62),
    sum(w63), sum(w64), sum(w65), sum(w66), sum(w67), sum(w68), sum(w69), sum(w70), sum(w71), sum(w72), sum(w73),
    sum(w74), sum(w75), sum(w76)
FROM city_figures WHERE kind IN ('item', 'half_hour') GROUP BY day, kind, key;

INSERT INTO city_spans (span, day, kind, hall, key, name,
    issued, called, served, noshow, transferred, wait_n, wait_sum, service_n, service_sum, r_very_satisfied,
    r_satisfied, r_basic, r_dissatisfied, r_very_dissatisfied, w00, w01, w02, w03, w04, w05, w06, w07, w08, w09, w10,
    w11, w12, w13, w14, w15, w16, w17, w18, w19, w20, w21, w22, w23, w24, w25, w26, w27, w28, w29, w30, w31, w32,
    w33, w34, w35, w36, w37, w38, w39, w40, w41, w42, w43, w44, w45, w46, w47, w48, w49, w50, w51, w52, w53, w54,
    w55, w56, w57, w58, w59, w60, w61, w62, w63, w64, w65, w66, w67, w68, w69, w70, w71, w72, w73, w74, w75, w76)
SELECT 'month', date_trunc('month', day)::date, kind, hall, key, max(name),
    sum(issued), sum(called), sum(served), sum(noshow), sum(transferred), sum(wait_n), sum(wait_sum), sum(service_n),
    sum(service_sum), sum(r_very_satisfied), sum(r_satisfied), sum(r_basic), sum(r_dissatisfied),
    sum(r_very_dissatisfied), sum(w00), sum(w01), sum(w02), sum(w03), sum(w04), sum(w05), sum(w06), sum(w07),
    sum(w08), sum(w09), sum(w10), sum(w11), sum(w12), sum(w13), sum(w14), sum(w15), sum(w16), sum(w17), sum(w18),
    sum(w19), sum(w20), sum(w21), sum(w22), sum(w23), sum(w24), sum(w25), sum(w26), sum(w27), sum(w28), sum(w29),
    sum(w30), sum(w31), sum(w32), sum(w33), sum(w34), sum(w35), sum(w36), sum(w37), sum(w38), sum(w39), sum(w40),
    sum(w41), sum(w42), sum(w43), sum(w44), sum(w45), sum(w46), sum(w47), sum(w48), sum(w49), sum(w50), sum(w51),
    sum(w52), sum(w53), sum(w54), sum(w55), sum(w56), sum(w57), sum(w58), sum(w59), sum(w60), sum(w61), sum(w62),
    sum(w63), sum(w64), sum(w65), sum(w66), sum(w67), sum(w68), sum(w69), sum(w70), sum(w71), sum(w72), sum(w73),
    sum(w74), sum(w75), sum(w76)
FROM city_figures GROUP BY 2, kind, hall, key
UNION ALL
SELECT 'week', date_trunc('month', day)::date + (extract(day FROM day)::int - 1) / 7 * 7, kind, hall, key, max(name),
    sum(issued), sum(called), sum(served), sum(noshow), sum(transferred), sum(wait_n), sum(wait_sum), sum(service_n),
    sum(service_sum), sum(r_very_satisfied), sum(r_satisfied), sum(r_basic), sum(r_dissatisfied),
    sum(r_very_dissatisfied), sum(w00), sum(w01), sum(w02), sum(w03), sum(w04), sum(w05), sum(w06), sum(w07),
    sum(w08), sum(w09), sum(w10), sum(w11), sum(w12), sum(w13), sum(w14), sum(w15), sum(w16), sum(w17), sum(w18),
    sum(w19), sum(w20), sum(w21), sum(w22), sum(w23), sum(w24), sum(w25), sum(w26), sum(w27), sum(w28), sum(w29),
    sum(w30), sum(w31), sum(w32), sum(w33), sum(w34), sum(w35), sum(w36), sum(w37), sum(w38), sum(w39), sum(w40),
    sum(w41), sum(w42), sum(w43), sum(w44), sum(w45), sum(w46), sum(w47), sum(w48), sum(w49), sum(w50), sum(w51),
    sum(w52), sum(w53), sum(w54), sum(w55), sum(w56), sum(w57), sum(w58), sum(w59), sum(w60), sum(w61), sum(w62),
    sum(w63), sum(w64), sum(w65), sum(w66), sum(w67), sum(w68), sum(w69), sum(w70), sum(w71), sum(w72), sum(w73),
    sum(w74), sum(w75), sum(w76)
FROM city_figures GROUP BY 2, kind, hall, key;

CREATE INDEX followups_open_by_hall ON followups (hall, due, rated_at) WHERE closed_at IS NULL;
CREATE INDEX followups_open_list ON followups (due, rated_at, hall, id) WHERE closed_at IS NULL;
CREATE INDEX followups_closed_list ON followups (closed_at, hall, id) WHERE closed_at IS NOT NULL;
