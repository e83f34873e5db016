-- 6: a refresh rolls up a few halls' day and rebuilds their month and block (hallq.central.web.figures.rollup):
-- it reads those halls' rows of the month by this index, not the whole city's month (1.4-2.7 s a hall before,
-- measured on 300 halls x 90 days).
CREATE INDEX city_figures_by_hall ON city_figures (hall, day);
