"""The hall configuration (TOML), strict: an unknown key or a bad value stops start-up naming the key.

```toml
[hall]
id = "demo"
name = "示范政务服务中心"
name_en = "Demo Government Service Center"         # optional
timezone = "Asia/Shanghai"                          # optional, this default
hours = [["09:00", "12:00"], ["14:00", "18:00"]]    # optional; omitted = open all day
notices = ["请携带身份证原件"]                          # optional: shown on the hall screen and kiosk

[[categories]]
code = "A"
name = "社保医保"
prefix = "A"            # optional, defaults to code (1-3 of A-Z, 0-9)
daily_quota = 300       # optional (at most 999: numbers have three digits)

[[windows]]
no = 1
name = "1号窗口"
categories = ["A", "B"]  # or ["*"]: a comprehensive window (综合窗口) serves every category

[dispatch]
priority_lead_min = 90   # optional, this default: the guard of the dispatch policy (core/dispatch.py)

[haocp]                  # optional: the province's 好差评 system and the follow-up of bad reviews
url = "https://..."      # omitted = no upload
area_code = "320312"     # 行政区划代码
scheme = "gbt39046"      # or "reverse" (5 = 非常满意)
followup_days = 5        # working days
holidays = ["2026-10-01"]

[appointments]           # optional: bookings (预约) and check-in rules
folder = "/var/lib/hallq/bookings"   # CSV/JSON files dropped here (code,category,date,start,end,person,name)
url = "https://..."      # or/and an endpoint polled every poll_seconds (300)
grace_min = 15           # minutes after the slot's end a check-in is still in time
late = "normal"          # beyond that: a normal ticket ("normal") or the answer too_late ("refuse")

[broker]                 # optional: how devices reach the broker over TLS (hallq provision)
host = "hallq-controller.local"
port = 8883

[follow]                 # optional: every ticket links to its live follow page (the dashboard's server)
url = "http://192.168.1.10:8080/f/{token}"   # {token}: the ticket's unguessable follow token
key_file = "/etc/hallq/follow.key"           # the tokens' key (hex or raw, >= 16 bytes; the dashboard reads it too)
take_client = "web-take"                     # optional: scan-to-take at /m/q, taking numbers as this client
kiosk_key_file = "/etc/hallq/kiosk.key"      # optional: phone numbers on that page keyed as the SMS gateway does

[central]                # optional: ship the hall's record to the city's centre (hallq central)
url = "https://central.example.gov.cn:8443"
credentials = "/etc/hallq/central.toml"      # written by `hallq central hall add` (0600)
ca = "/etc/hallq/central-ca.crt"             # optional: the centre's CA (hallq central tls); default: the system's

[alerts]                 # optional: when the dashboard (hallq dashboard) alerts the managers
wait_min = 30            # a ticket has waited longer than this (minutes) ...
wait_min_by_category = { B = 45 }   # ... or than its category's own limit
idle_min = 5             # a window with a clerk idle this long while people wait for it
paused_min = 15          # a window paused this long while people wait for it
followup_warn_days = 1   # a follow-up due within this many days (overdue ones always)

[staffing]               # optional: the dashboard's staffing advice (DB3310/T 58 §5.2.6)
target_p90_min = 20      # keep the 90th percentile of waits under this
weeks = 4                # learn arrivals and service times from this many same weekdays before

[limits]                 # optional: per-client limits, the controller's second line after the broker's ACL
replies = 20000          # answers kept for repeated reqs (memory and record rows; oldest go first)
refusals = 5000          # refusals that changed nothing: kept in memory only ...
refusal_keep_s = 600     # ... this long (a client repeats a req within its time-out, seconds)

[limits.kiosk]           # one table per role (kiosk, sms, window, pad, display, monitor), and
rate = 10                # `unlisted` (a client not in [[devices]]) and `default` (every client of a hall
burst = 60               # without [[devices]]): requests per second of hall time, sustained / at once,
open_tickets = 1000      # and the waiting tickets one client may hold (kiosk, sms, default)

[[devices]]              # optional; when present, only these clients may send requests
id = "kiosk-1"
role = "kiosk"           # kiosk | sms: take | window: ops of its window | pad: rate for its window
window = 1               # for window and pad devices    | display: nothing (mode = "hall" | "window")
staff_priorities = ["military", "disabled", "pregnant"]   # kiosks: priorities a staff member confirms
                         # there (导服台); a touch take from any other kiosk claims no priority that
                         # needs a document (see core/limits.py)
```
``[[devices]]`` and ``[broker]`` are :mod:`hallq.shared.inventory`'s models, which ``hallq provision`` reads too.

:func:`load` reads a file, :func:`parse` a text; both raise :class:`~hallq.shared.config.ConfigError`
whose message names the file and the key. :meth:`HallFile.public` is the retained ``config`` payload.
"""

from __future__ import annotations

import os
import re
from datetime import date, time
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hallq.shared.config import ConfigError, ConfigModel, load_config, parse_config
from hallq.shared.inventory import BrokerSection, DeviceEntry, check_broker, check_devices
from hallq.shared.schemas import CategoryInfo, HallConfig, WindowInfo
from msgspec import Meta, field

HHMM = Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")]
Code = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,16}$")]
Prefix = Annotated[str, Meta(pattern=r"^[A-Z0-9]{1,3}$")]
Text = Annotated[str, Meta(min_length=1, max_length=200)]
ALL = "*"  # a window's categories = ["*"]: every category (一窗通办)


class HallSection(ConfigModel, kw_only=True):
    id: Annotated[str, Meta(pattern=r"^[a-z0-9_-]{1,32}$")]
    name: Text
    name_en: Text | None = None
    timezone: str = "Asia/Shanghai"
    hours: list[tuple[HHMM, HHMM]] = []
    notices: list[Text] = []


class CategorySection(ConfigModel, kw_only=True):
    code: Code
    name: Text
    name_en: Text | None = None
    prefix: Prefix | None = None
    daily_quota: Annotated[int, Meta(ge=1, le=999)] | None = None

    @property
    def ticket_prefix(self) -> str:
        return self.prefix or self.code


class WindowSection(ConfigModel, kw_only=True):
    no: Annotated[int, Meta(ge=1, le=999)]
    name: Text
    name_en: Text | None = None
    categories: Annotated[list[Annotated[str, Meta(pattern=r"^([A-Za-z0-9_-]{1,16}|\*)$")]], Meta(min_length=1)]


class DispatchSection(ConfigModel, kw_only=True):
    priority_lead_min: Annotated[int, Meta(ge=0, le=480)] = 90


DateStr = Annotated[str, Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")]


class HaocpSection(ConfigModel, kw_only=True):
    """``[haocp]``: where and how ratings go to the province's 好差评 system, and the follow-up rules."""

    url: str | None = None
    area_code: Annotated[str, Meta(pattern=r"^[0-9]{6}([0-9]{3})?([0-9]{3})?$")]
    scheme: Literal["gbt39046", "reverse"] = "gbt39046"
    #: Working days to call back and settle a bad review (local rules say 5 to 15).
    followup_days: Annotated[int, Meta(ge=1, le=60)] = 5
    holidays: list[DateStr] = []
    #: Weekend days that are working days (调休).
    workdays: list[DateStr] = []
    #: 评价渠道 code: 5 = 政务大厅其他终端 (a rating pad), 4 = 政务大厅平板电脑.
    channel: Literal["1", "2", "3", "4", "5", "6", "7"] = "5"
    timeout_seconds: Annotated[float, Meta(gt=0, le=120)] = 10.0
    #: Backoff between tries: doubling from ``retry_min_seconds`` up to ``retry_max_seconds``.
    retry_min_seconds: Annotated[float, Meta(gt=0, le=600)] = 1.0
    retry_max_seconds: Annotated[float, Meta(gt=0, le=3600)] = 300.0

    def __post_init__(self) -> None:
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"haocp.url {self.url!r} must be an http:// or https:// URL")
        for key in ("holidays", "workdays"):
            for d in getattr(self, key):
                try:
                    date.fromisoformat(d)
                except ValueError:
                    raise ValueError(f"haocp.{key}: {d!r} is not a date") from None


class CentralSection(ConfigModel, kw_only=True):
    """``[central]``: the city's central side this hall ships its record to (see :mod:`.shipper`)."""

    #: The centre's ingest endpoint, e.g. ``https://central.example.gov.cn:8443`` (https; http only on loopback).
    url: str
    #: The hall's credentials file, written by ``hallq central hall add`` (0600).
    credentials: Annotated[str, Meta(min_length=1, max_length=500)]
    #: The CA that signed the centre's certificate (``hallq central tls``); left out: the system's CAs.
    ca: Annotated[str, Meta(min_length=1, max_length=500)] | None = None
    #: Rows per batch.
    batch: Annotated[int, Meta(ge=1, le=2000)] = 500
    #: A batch that is not full waits until its oldest row is this old (seconds): a city of 300 halls then
    #: posts ~20 batches a second instead of ~600 tiny ones; 15 s kept up with 300 halls at 10x on the shared
    #: 2-core machine where 5 s fell behind (bench/bench_central.py, central/README.md); 0 sends at once.
    linger_seconds: Annotated[float, Meta(ge=0, le=600)] = 15.0
    #: When the city uploads this hall's ratings to 好差评 (``hallq central haocp on``), the hall's own ``[haocp]``
    #: link uploads a rating itself only if the centre has not taken it over within this many minutes.
    haocp_fallback_minutes: Annotated[float, Meta(gt=0, le=10080)] = 60.0
    timeout_seconds: Annotated[float, Meta(gt=0, le=120)] = 10.0
    #: Backoff between tries: doubling from ``retry_min_seconds`` up to ``retry_max_seconds``.
    retry_min_seconds: Annotated[float, Meta(gt=0, le=600)] = 1.0
    retry_max_seconds: Annotated[float, Meta(gt=0, le=3600)] = 60.0

    def __post_init__(self) -> None:
        from urllib.parse import urlsplit

        u = urlsplit(self.url)
        if u.scheme not in ("https", "http") or not u.hostname:
            raise ValueError(f"central.url {self.url!r} must be an https:// URL")
        if u.scheme == "http" and u.hostname not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError(f"central.url {self.url!r}: records leave the hall over https only")


class AppointmentsSection(ConfigModel, kw_only=True):
    """``[appointments]``: where bookings come from, and the check-in rules (预约取号)."""

    #: A folder where CSV or JSON booking files are dropped (read again whenever one changes).
    folder: Annotated[str, Meta(min_length=1, max_length=500)] | None = None
    #: An HTTP(S) endpoint answering the bookings (CSV or JSON), polled every ``poll_seconds``.
    url: str | None = None
    poll_seconds: Annotated[float, Meta(ge=5, le=86400)] = 300.0
    timeout_seconds: Annotated[float, Meta(gt=0, le=120)] = 10.0
    retries: Annotated[int, Meta(ge=0, le=10)] = 3
    retry_min_seconds: Annotated[float, Meta(gt=0, le=600)] = 2.0
    #: Minutes after the slot's end a check-in still counts as in time (迟到宽限).
    grace_min: Annotated[int, Meta(ge=0, le=240)] = 15
    #: Beyond the grace: ``normal`` issues a normal ticket (and says so), ``refuse`` answers ``too_late``.
    late: Literal["normal", "refuse"] = "normal"

    def __post_init__(self) -> None:
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"appointments.url {self.url!r} must be an http:// or https:// URL")


class RoleLimit(ConfigModel, kw_only=True):
    """The limits of one role's clients (see :mod:`.core.limits`)."""

    #: Requests per second of hall time, sustained ...
    rate: Annotated[float, Meta(gt=0, le=100000)]
    #: ... and at once (a token bucket of this size).
    burst: Annotated[int, Meta(ge=1, le=1000000)]
    #: Waiting tickets one client may hold (takers only: kiosk, sms, and every client of a hall without
    #: ``[[devices]]``).
    open_tickets: Annotated[int, Meta(ge=0, le=1000000)] = 0


def _role(rate: float, burst: int, open_tickets: int = 0):
    return field(default_factory=lambda: RoleLimit(rate=rate, burst=burst, open_tickets=open_tickets))


class LimitsSection(ConfigModel, kw_only=True):
    """``[limits]``: per-client request rates, open tickets, and how many answers are kept (issue 9 §5).

    A kiosk takes many numbers, a hand-written client few: the limits are per role, from ``[[devices]]``.
    """

    #: Answers kept for repeated ``req``s, in memory and as rows of the record (the oldest go first).
    replies: Annotated[int, Meta(ge=100, le=10000000)] = 20000
    #: Refusals that changed nothing are kept in memory only (never written), at most this many ...
    refusals: Annotated[int, Meta(ge=0, le=10000000)] = 5000
    #: ... and this long (seconds of hall time): a client repeats a ``req`` only within its own time-out.
    refusal_keep_s: Annotated[float, Meta(ge=0, le=86400)] = 600.0
    kiosk: RoleLimit = _role(10, 60, 1000)
    sms: RoleLimit = _role(10, 60, 1000)
    window: RoleLimit = _role(10, 60)
    pad: RoleLimit = _role(5, 30)
    display: RoleLimit = _role(1, 5)
    monitor: RoleLimit = _role(1, 5)
    #: A client that is not in ``[[devices]]`` (every answer it gets is ``not_allowed``).
    unlisted: RoleLimit = _role(1, 5)
    #: Every client of a hall without ``[[devices]]`` (kiosks and hand-written clients alike: list the
    #: devices to give each role its own limits).
    default: RoleLimit = _role(10, 60, 300)


#: ``[[devices]]`` and ``[broker]`` are the hall's inventory, shared with ``hallq provision``.
DeviceSection = DeviceEntry


class FollowSection(ConfigModel, kw_only=True):
    """Follow pages: the URL template tickets link to and the key of their tokens (:mod:`hallq.shared.follow`)."""

    url: Annotated[str, Meta(pattern=r"^https?://[^\s]*\{token\}[^\s]*$", max_length=200)]
    key_file: str
    #: Scan-to-take (the QR code at the door): the client id the dashboard's page takes numbers as (a
    #: ``kiosk`` in ``[[devices]]`` when the hall lists devices); left out: no scan-to-take page.
    take_client: Annotated[str, Meta(pattern=r"^[a-z0-9_-]{1,64}$")] | None = None
    #: The kiosks' key, so a phone number given on the page is the same person as by SMS (optional).
    kiosk_key_file: str | None = None


class AlertsSection(ConfigModel, kw_only=True):
    """The dashboard's alert thresholds (the controller does not use them)."""

    wait_min: Annotated[int, Meta(ge=1, le=600)] = 30
    wait_min_by_category: dict[str, Annotated[int, Meta(ge=1, le=600)]] = {}
    idle_min: Annotated[int, Meta(ge=1, le=600)] = 5
    paused_min: Annotated[int, Meta(ge=1, le=600)] = 15
    followup_warn_days: Annotated[int, Meta(ge=0, le=30)] = 1


class StaffingSection(ConfigModel, kw_only=True):
    """The dashboard's staffing advice (the controller does not use it)."""

    target_p90_min: Annotated[int, Meta(ge=1, le=240)] = 20
    weeks: Annotated[int, Meta(ge=1, le=12)] = 4


class HallFile(ConfigModel, kw_only=True):
    """The whole hall config file (after :func:`check`, window categories are expanded, never ``*``)."""

    hall: HallSection
    categories: Annotated[list[CategorySection], Meta(min_length=1)]
    windows: Annotated[list[WindowSection], Meta(min_length=1)]
    dispatch: DispatchSection = field(default_factory=DispatchSection)
    devices: list[DeviceEntry] | None = None
    #: How devices reach the hall's broker over TLS (``hallq provision`` makes the certificate for it).
    broker: BrokerSection | None = None
    #: The 好差评 link and the follow-up rules (see :mod:`.haocp`, :mod:`.followups`); left out: no upload,
    #: default rules.
    haocp: HaocpSection | None = None
    #: Bookings and check-in rules; left out: no booking source, the default rules (every check-in is
    #: checked against the bookings the hall holds).
    appointments: AppointmentsSection = field(default_factory=AppointmentsSection)
    #: The city's central side (``[central]``); left out: the hall ships nothing (and queues nothing, unless it
    #: was once shipping: see :mod:`.central_outbox`).
    central: CentralSection | None = None
    #: Follow pages (``[follow]``); left out: tickets carry no follow link.
    follow: FollowSection | None = None
    #: The dashboard's alert thresholds and staffing target (see ``hallq.dashboard``); defaults when left out.
    alerts: AlertsSection = field(default_factory=AlertsSection)
    staffing: StaffingSection = field(default_factory=StaffingSection)
    #: Per-client limits and the bounds of the reply cache (``[limits]``); defaults when left out.
    limits: LimitsSection = field(default_factory=LimitsSection)

    # -- derived views (cheap; used by the core) -------------------------------------------------------
    def category(self, code: str) -> CategorySection | None:
        for c in self.categories:
            if c.code == code:
                return c
        return None

    def window(self, no: int) -> WindowSection | None:
        for w in self.windows:
            if w.no == no:
                return w
        return None

    def open_intervals(self) -> list[tuple[time, time | None]]:
        """The opening hours as local times; an end of ``None`` means midnight (``24:00``)."""
        return [(_hhmm(a), None if b == "24:00" else _hhmm(b)) for a, b in self.hall.hours]

    def public(self) -> HallConfig:
        """The retained ``config`` payload."""
        return HallConfig(
            hall=self.hall.id,
            name=self.hall.name,
            name_en=self.hall.name_en,
            timezone=self.hall.timezone,
            hours=[(a, b) for a, b in self.hall.hours],
            categories=[
                CategoryInfo(code=c.code, name=c.name, prefix=c.ticket_prefix, name_en=c.name_en)
                for c in self.categories
            ],
            windows=[
                WindowInfo(no=w.no, name=w.name, categories=list(w.categories), name_en=w.name_en)
                for w in self.windows
            ],
            notices=list(self.hall.notices),
            follow_url=self.follow.url if self.follow is not None else None,
        )


def _hhmm(s: str) -> time:
    h, m = s.split(":")
    return time(int(h), int(m))


def _minutes(s: str) -> int:
    h, m = s.split(":")
    return int(h) * 60 + int(m)


def check(cfg: HallFile, source: str = "config") -> HallFile:
    """The cross-checks a schema cannot express; raises :class:`ConfigError` naming the key."""

    def fail(key: str, why: str) -> None:
        raise ConfigError(f"{source}: {key}: {why}")

    try:
        ZoneInfo(cfg.hall.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        fail("hall.timezone", f"unknown time zone {cfg.hall.timezone!r}")
    last_end = -1
    for i, (a, b) in enumerate(cfg.hall.hours):
        if a == "24:00":
            fail(f"hall.hours[{i}]", "an opening cannot start at 24:00")
        if _minutes(a) >= _minutes(b):
            fail(f"hall.hours[{i}]", f"{a}–{b}: the start must be before the end")
        if _minutes(a) < last_end:
            fail(f"hall.hours[{i}]", f"{a}–{b} overlaps or comes before the previous opening")
        last_end = _minutes(b)

    codes: dict[str, int] = {}
    prefixes: dict[str, int] = {}
    for i, c in enumerate(cfg.categories):
        if c.code in codes:
            fail(f"categories[{i}].code", f"{c.code!r} is already categories[{codes[c.code]}]")
        codes[c.code] = i
        if c.prefix is None and not re.fullmatch(r"[A-Z0-9]{1,3}", c.code):
            fail(f"categories[{i}].prefix", f"the code {c.code!r} cannot be a ticket prefix (1-3 of A-Z, 0-9): give a prefix")
        p = c.ticket_prefix
        if p in prefixes:
            fail(f"categories[{i}].prefix", f"{p!r} is already the prefix of categories[{prefixes[p]}]")
        prefixes[p] = i

    numbers: dict[int, int] = {}
    for i, w in enumerate(cfg.windows):
        if w.no in numbers:
            fail(f"windows[{i}].no", f"window {w.no} is already windows[{numbers[w.no]}]")
        numbers[w.no] = i
        if ALL in w.categories:
            if len(w.categories) != 1:
                fail(f"windows[{i}].categories", '"*" (every category) stands alone')
            w.categories = [c.code for c in cfg.categories]
            continue
        seen: set[str] = set()
        for j, code in enumerate(w.categories):
            if code not in codes:
                fail(f"windows[{i}].categories[{j}]", f"unknown category {code!r}")
            if code in seen:
                fail(f"windows[{i}].categories[{j}]", f"{code!r} is listed twice")
            seen.add(code)
    served = {code for w in cfg.windows for code in w.categories}
    for i, c in enumerate(cfg.categories):
        if c.code not in served:
            fail(f"categories[{i}]", f"no window serves category {c.code!r}")

    for code in cfg.alerts.wait_min_by_category:
        if code not in codes:
            fail(f"alerts.wait_min_by_category.{code}", f"unknown category {code!r}")

    if cfg.devices is not None:
        check_devices(cfg.devices, set(numbers), source)
    if cfg.broker is not None:
        check_broker(cfg.broker, source)
    return cfg


def parse(text: str | bytes, source: str = "config") -> HallFile:
    """Parse and check a hall config from TOML text."""
    return check(parse_config(text, HallFile, source=source), source)


def load(path: str | os.PathLike[str]) -> HallFile:
    """Read, parse and check a hall config file."""
    return check(load_config(path, HallFile), str(path))
