"""A simulated hall day: who comes when, for what, how long they take, and how they rate.

Pure: no IO and no clock. Times are seconds since the local midnight of the simulated day. Everything is
drawn from one ``random.Random(seed)``, so a seed gives the same day every time.

What the model says, and where the numbers come from:

- **Arrivals** are a non-homogeneous Poisson process. The rate over the day follows :func:`profile_weight`:
  a base level, a morning peak around 10:00, a smaller afternoon one around 15:00, and a taper in the last
  half hour before each closing (people who know the hall do not come five minutes before it closes). The
  half-hour shape is what halls record (the standard records the flow every half hour).
- **Volume** is set by the load: the day's expected number of visits is ``load`` times what the open
  windows can serve in the opening hours at the categories' mean service times. With ``load`` about 0.85
  the peaks run over capacity and queues build, as they do in a real hall.
- **Categories** get a share of the visits and a log-normal service time (median and shape per category):
  most services are short, a few take much longer.
- **Priority citizens** (elderly, disabled, pregnant, military) and **appointments** come in realistic
  shares; appointment holders booked a half-hour slot and arrive from 10 minutes before it to 20 minutes
  into it (:func:`slot_of`; :func:`bookings_csv` is the day's booking file).
- **No-shows**: a share do not come when called; a few more come only after a recall.
- **Transfers**: a share of visits turn out to belong to another category and are transferred there,
  after part of their service at the first window.
- **Ratings**: most citizens rate. The levels follow the published figures of a hall (13,851 ratings:
  13,345 very satisfied, 363 satisfied, 143 dissatisfied: 98.97% satisfied), and the chance of a poor rating
  grows with the wait beyond 20 minutes.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

#: Seconds in a minute and a half hour, for readability.
MIN = 60.0
HALF_HOUR = 1800.0

PRIORITIES = ("elderly", "disabled", "pregnant", "military")
LEVELS = ("very_satisfied", "satisfied", "basic", "dissatisfied", "very_dissatisfied")


@dataclass(frozen=True)
class Item:
    """A service item (事项) of a category: what goes on the case."""

    code: str
    name: str


@dataclass(frozen=True)
class CategoryProfile:
    """How one category behaves: its share of the visits and its service times."""

    code: str
    share: float  # relative weight among the categories
    service_median_min: float
    service_sigma: float = 0.55  # shape of the log-normal service time
    items: tuple[Item, ...] = ()

    @property
    def service_mean_min(self) -> float:
        return self.service_median_min * math.exp(self.service_sigma**2 / 2)


@dataclass(frozen=True)
class HallShape:
    """What the simulation needs to know of a hall: categories, windows and their skills, hours."""

    categories: tuple[CategoryProfile, ...]
    windows: dict[int, tuple[str, ...]]  # window number -> the categories it serves
    hours: tuple[tuple[float, float], ...]  # opening spans, seconds since midnight

    def category(self, code: str) -> CategoryProfile:
        for c in self.categories:
            if c.code == code:
                return c
        raise KeyError(code)

    @property
    def open_seconds(self) -> float:
        return sum(b - a for a, b in self.hours)


@dataclass(frozen=True)
class Rates:
    """The shares and behaviours of citizens; the defaults are what a county-level hall sees."""

    load: float = 0.85  # expected work / window capacity over the opening hours
    priority: dict[str, float] = field(
        default_factory=lambda: {"elderly": 0.06, "disabled": 0.015, "pregnant": 0.01, "military": 0.005}
    )
    appointment: float = 0.08  # share who booked online and check in on time
    idcard: float = 0.40  # share who take their number with their ID card (the rest by touch)
    noshow: float = 0.05  # never come when called
    late: float = 0.04  # come only after one recall
    transfer: float = 0.04  # turn out to belong to another category
    rate: float = 0.85  # share who press a key on the rating pad
    promised: float = 0.05  # cases that are promised (承诺件) rather than done on the spot (即办件)
    refused: float = 0.01  # cases sent back (退回件)


@dataclass(frozen=True)
class Transfer:
    """A visit that turns out to belong elsewhere: after ``after_s`` at the first window it goes to
    ``category`` and takes ``service_s`` there."""

    category: str
    after_s: float
    service_s: float


@dataclass(frozen=True)
class Visit:
    """One citizen's visit, as drawn before the day starts."""

    id: int
    arrival_s: float
    category: str
    priority: str | None  # one of PRIORITIES, "appointment", or None
    channel: str  # "touch", "idcard", "staff" (a priority a staff member confirmed) or "appointment"
    service_s: float
    answers_after: int | None  # recalls needed before they come (0: at the first call); None: no-show
    transfer: Transfer | None
    rates: bool  # presses a key on the pad after service
    rating_u: float  # uniform draw for the rating level (see rating_level)
    item: Item
    case_kind: str  # instant, promised or refused
    appointment: str | None = None  # the booking code, for appointments
    slot: tuple[float, float] | None = None  # the booked slot (start, end, seconds since midnight)

    @property
    def is_priority(self) -> bool:
        return self.priority is not None


#: A booked slot's length.
SLOT_S = 30 * MIN


def slot_of(arrival_s: float, hours: tuple[tuple[float, float], ...]) -> tuple[float, float]:
    """The half-hour slot a citizen who arrives at ``arrival_s`` booked: the one starting at or before
    ``arrival_s + 10 min`` (so they come from 10 minutes early to 20 minutes into it), within the opening
    interval of the arrival."""
    start = (arrival_s + 10 * MIN) // SLOT_S * SLOT_S
    for a, b in hours:
        if a <= arrival_s < b and start + SLOT_S > b:
            start = max(a, arrival_s // SLOT_S * SLOT_S)
    return start, start + SLOT_S


def bookings_csv(visits: list[Visit], day: str) -> str:
    """The bookings of the day's appointment holders, as a file a booking platform drops for the hall."""
    rows = ["code,category,date,start,end,person,name"]
    for v in visits:
        if v.appointment is not None and v.slot is not None:
            rows.append(f"{v.appointment},{v.category},{day},{s_to_hhmm(v.slot[0])},{s_to_hhmm(v.slot[1])},,")
    return "\n".join(rows) + "\n"


# -- the arrival profile -----------------------------------------------------------------------------------
def profile_weight(t_s: float, hours: tuple[tuple[float, float], ...]) -> float:
    """The relative arrival rate at ``t_s`` (seconds since midnight); 0 outside the opening hours.

    Base 1.0, a morning peak of +0.9 centred on 10:00, an afternoon peak of +0.5 on 15:00 (both Gaussian,
    about an hour wide), and a linear taper to 0.3 over the last half hour before each closing.
    """
    for start, end in hours:
        if start <= t_s < end:
            break
    else:
        return 0.0
    h = t_s / 3600.0
    w = 1.0 + 0.9 * math.exp(-((h - 10.0) ** 2) / (2 * 0.6**2)) + 0.5 * math.exp(-((h - 15.0) ** 2) / (2 * 0.7**2))
    left = end - t_s
    if left < HALF_HOUR:
        w *= 0.3 + 0.7 * left / HALF_HOUR
    return w


def half_hour_profile(hours: tuple[tuple[float, float], ...]) -> dict[int, float]:
    """The mean weight of each half hour (key: the half hour's start, seconds since midnight)."""
    out: dict[int, float] = {}
    for start, end in hours:
        t = math.floor(start / HALF_HOUR) * HALF_HOUR
        while t < end:
            samples = [profile_weight(t + (i + 0.5) * HALF_HOUR / 30, hours) for i in range(30)]
            out[int(t)] = sum(samples) / len(samples)
            t += HALF_HOUR
    return out


def expected_visits(shape: HallShape, rates: Rates) -> float:
    """How many visits a day brings at ``rates.load``: load x capacity of the open windows.

    Capacity is window-minutes open divided by the visit-weighted mean service time (a transfer adds its
    second service, a no-show costs the clerk about two minutes of calling).
    """
    total = sum(c.share for c in shape.categories)
    mean_service = sum(c.share / total * c.service_mean_min for c in shape.categories)
    mean_work = (1 - rates.noshow) * mean_service * (1 + rates.transfer) + rates.noshow * 2.0
    window_minutes = len(shape.windows) * shape.open_seconds / MIN
    return rates.load * window_minutes / mean_work


def _poisson_times(rng: random.Random, hours: tuple[tuple[float, float], ...], n_mean: float) -> list[float]:
    """Arrival times of a Poisson process whose rate follows profile_weight, n_mean arrivals expected.

    Thinning (Lewis and Shedler): draw a homogeneous process at the peak rate and keep each point with
    probability weight / peak.
    """
    grid = [a + i * 30.0 for a, b in hours for i in range(int((b - a) // 30.0) + 1)]
    weights = [profile_weight(t, hours) for t in grid]
    area = sum(profile_weight(a + (i + 0.5) * 30.0, hours) * 30.0 for a, b in hours for i in range(int((b - a) // 30.0)))
    peak = max(weights) * 1.05
    lam = n_mean / area  # arrivals per second per unit weight
    times: list[float] = []
    for start, end in hours:
        t = start
        while True:
            t += rng.expovariate(lam * peak)
            if t >= end:
                break
            if rng.random() * peak < profile_weight(t, hours):
                times.append(t)
    return times


# -- ratings -----------------------------------------------------------------------------------------------
#: The published split of one hall's ratings (very satisfied, satisfied, basic, dissatisfied, very).
BASE_LEVELS = (13345 / 13851, 363 / 13851, 0.0005, 143 / 13851 - 0.0005, 0.0)


def rating_level(u: float, wait_s: float) -> str:
    """The level a citizen presses: ``u`` is their uniform draw, ``wait_s`` how long they waited.

    Up to 20 minutes of wait the published split holds; beyond it half a point of probability per extra
    minute moves from "very satisfied" to the lower levels (a third each to basic, dissatisfied, very
    dissatisfied), up to 15 points. On a busy day that keeps the hall near the ~98% halls report.
    """
    extra = min(0.15, max(0.0, (wait_s / MIN - 20.0) * 0.005))
    probs = [BASE_LEVELS[0] - extra, BASE_LEVELS[1], BASE_LEVELS[2] + extra / 3,
             BASE_LEVELS[3] + extra / 3, BASE_LEVELS[4] + extra / 3]
    acc = 0.0
    for level, p in zip(LEVELS, probs, strict=True):
        acc += p
        if u < acc:
            return level
    return LEVELS[-1]


def satisfaction(levels: list[str]) -> float | None:
    """(very satisfied + satisfied) / rated, as halls report it."""
    if not levels:
        return None
    return sum(1 for x in levels if x in ("very_satisfied", "satisfied")) / len(levels)


# -- the day -----------------------------------------------------------------------------------------------
def _pick(rng: random.Random, weights: dict[str, float]) -> str | None:
    u = rng.random()
    acc = 0.0
    for key, p in weights.items():
        acc += p
        if u < acc:
            return key
    return None


def simulate_visits(shape: HallShape, rates: Rates | None = None, seed: int = 1,
                    span: tuple[float, float] | None = None) -> list[Visit]:
    """The visits of one day, sorted by arrival. ``span`` keeps only the day's arrivals within it (a
    shorter demo): the same citizens as the whole day's, not a different day."""
    rates = rates or Rates()
    rng = random.Random(seed)
    n_mean = expected_visits(shape, rates)
    times = _poisson_times(rng, shape.hours, n_mean)
    codes = [c.code for c in shape.categories]
    shares = [c.share for c in shape.categories]
    served_somewhere = {c for cats in shape.windows.values() for c in cats}
    visits: list[Visit] = []
    for i, t in enumerate(times):
        code = rng.choices(codes, shares)[0]
        prof = shape.category(code)
        if rng.random() < rates.appointment:
            priority, channel = "appointment", "appointment"
        else:
            priority = _pick(rng, rates.priority)
            channel = "idcard" if rng.random() < rates.idcard else "touch"
            if priority is not None:  # a priority needs a voucher (controller core/limits.py): the ID card
                channel = "idcard" if priority == "elderly" else "staff"  # shows the age; staff check the rest
        service = rng.lognormvariate(math.log(prof.service_median_min * MIN), prof.service_sigma)
        u = rng.random()
        answers: int | None = None if u < rates.noshow else (1 if u < rates.noshow + rates.late else 0)
        transfer = None
        others = [c for c in codes if c != code and c in served_somewhere]
        if others and rng.random() < rates.transfer:
            other = shape.category(rng.choice(others))
            second = rng.lognormvariate(math.log(other.service_median_min * MIN), other.service_sigma)
            transfer = Transfer(other.code, after_s=min(service, rng.uniform(1.0, 3.0) * MIN), service_s=second)
            if answers is None:  # a no-show is never served, so never transferred (the draws keep the seed's day)
                transfer = None
        final = shape.category(transfer.category) if transfer else prof
        items = final.items or (Item(f"{final.code}-001", f"{final.code} 类业务"),)
        item = rng.choice(items)
        k = rng.random()
        kind = "refused" if k < rates.refused else ("promised" if k < rates.refused + rates.promised else "instant")
        visits.append(
            Visit(
                id=i + 1,
                arrival_s=t,
                category=code,
                priority=priority,
                channel=channel,
                service_s=service,
                answers_after=answers,
                transfer=transfer,
                rates=rng.random() < rates.rate,
                rating_u=rng.random(),
                item=item,
                case_kind=kind,
                appointment=f"YY{seed % 100:02d}{i + 1:06d}" if priority == "appointment" else None,
                slot=slot_of(t, shape.hours) if priority == "appointment" else None,
            )
        )
    if span is not None:  # the same day, seen through a window of time
        visits = [v for v in visits if span[0] <= v.arrival_s < span[1]]
    return visits


def hhmm_to_s(text: str) -> float:
    """``"09:30"`` -> seconds since midnight (``"24:00"`` is the end of the day)."""
    hh, mm = text.split(":")
    h, m = int(hh), int(mm)
    if not (0 <= h <= 24 and 0 <= m < 60) or (h == 24 and m):
        raise ValueError(f"not a time of day: {text!r}")
    return h * 3600.0 + m * 60.0


def s_to_hhmm(t_s: float) -> str:
    t = int(t_s // 60)
    return f"{t // 60:02d}:{t % 60:02d}"
