"""Bookings (预约) into the controller: from files dropped in a folder, or from an HTTP endpoint polled.

A booking is one row: ``code``, ``category``, ``date`` (``YYYY-MM-DD``), ``start`` and ``end`` of its slot
(``HH:MM``, the hall's local time), optionally ``person`` (the person key the kiosk sends for the same
citizen on that date: ``hallq.shared.personkey``; never an ID number), ``name`` (masked, e.g. ``张*``) and
``status``: ``booked`` (the default) or ``cancelled`` (also ``canceled``, ``取消``, ``已取消``): a booking
the citizen cancelled is listed with that status (a later file listing the code as booked books it again); the
hall then refuses its check-in, does not count it as a no-show and expects nobody for it.

- :func:`parse` reads CSV (a header row with those names) or JSON (a list of objects, or
  ``{"bookings": [...]}``); a malformed row is reported with its line (CSV) or item (JSON) and skipped, the
  rest imported.
- :class:`Feed`, a thread of the controller, looks at ``[appointments] folder`` every few seconds and
  reads a ``*.csv`` or ``*.json`` file again when it changed (size or time), and GETs ``[appointments] url``
  every ``poll_seconds`` (httpx, with time-outs; transient failures retried with backoff by tenacity).
  What it reads goes to the core as one :class:`~hallq.controller.core.BookingsIn` event per source; the
  core keeps them (a booking already checked in is never changed by a later import).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import Any

from .config import AppointmentsSection
from .core import Booking, BookingsIn

log = logging.getLogger(__name__)

FIELDS = ("code", "category", "date", "start", "end", "person", "name", "status")
#: ``status`` values: booked, or cancelled by the citizen.
BOOKED = ("", "booked", "已预约")
CANCELLED = ("cancelled", "canceled", "取消", "已取消")
REQUIRED = ("code", "category", "date", "start", "end")
CODE = re.compile(r"^[A-Za-z0-9-]{4,32}$")
PERSON = re.compile(r"^[0-9a-f]{32,128}$")
HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
#: The most rows one source may hold (a hall books hundreds a day, a file a few weeks ahead).
MAX_ROWS = 50_000


@dataclass(frozen=True)
class RowError:
    where: str  # "line 7" (CSV) or "item 3" (JSON)
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def parse(text: str, kind: str, categories: Collection[str]) -> tuple[list[Booking], list[RowError]]:
    """The bookings of a CSV or JSON text (``kind`` is ``"csv"`` or ``"json"``) and its malformed rows."""
    if kind == "csv":
        rows = _csv_rows(text)
    elif kind == "json":
        rows = _json_rows(text)
    else:
        raise ValueError(f"bookings come as csv or json, not {kind!r}")
    out: list[Booking] = []
    errors: list[RowError] = []
    seen: dict[str, str] = {}
    for where, row in rows:
        if isinstance(row, str):  # the whole text (or this row) could not be read
            errors.append(RowError(where, row))
            continue
        try:
            b = _booking(row, categories)
        except ValueError as exc:
            errors.append(RowError(where, str(exc)))
            continue
        if b.code in seen:
            errors.append(RowError(where, f"code {b.code!r} is already booked at {seen[b.code]}"))
            continue
        if len(out) >= MAX_ROWS:
            errors.append(RowError(where, f"more than {MAX_ROWS} bookings in one source: the rest is skipped"))
            break
        seen[b.code] = where
        out.append(b)
    return out, errors


def _csv_rows(text: str) -> list[tuple[str, dict[str, Any] | str]]:
    text = text.lstrip("\ufeff")  # a spreadsheet's byte order mark
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        return []
    except csv.Error as exc:
        return [("line 1", f"not CSV: {exc}")]
    names = [h.strip().lower() for h in header]
    missing = [f for f in REQUIRED if f not in names]
    unknown = [h for h in names if h and h not in FIELDS]
    if missing or unknown:
        why = []
        if missing:
            why.append(f"the header lacks {', '.join(missing)}")
        if unknown:
            why.append(f"unknown columns {', '.join(unknown)}")
        return [("line 1", "; ".join(why) + f" (columns: {', '.join(FIELDS)})")]
    out: list[tuple[str, dict[str, Any] | str]] = []
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            out.append((f"line {reader.line_num}", f"not CSV: {exc}"))
            break
        where = f"line {reader.line_num}"
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(names):
            out.append((where, f"{len(cells)} cells where the header has {len(names)}"))
            continue
        out.append((where, {n: c.strip() for n, c in zip(names, cells, strict=True) if n}))
    return out


def _json_rows(text: str) -> list[tuple[str, dict[str, Any] | str]]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        return [("item 1", f"not JSON: {exc}")]
    if isinstance(data, dict) and set(data) == {"bookings"}:
        data = data["bookings"]
    if not isinstance(data, list):
        return [("item 1", 'expected a list of bookings (or {"bookings": [...]})')]
    out: list[tuple[str, dict[str, Any] | str]] = []
    for i, item in enumerate(data, 1):
        if not isinstance(item, dict):
            out.append((f"item {i}", "a booking is an object"))
            continue
        unknown = [k for k in item if k not in FIELDS]
        if unknown:
            out.append((f"item {i}", f"unknown keys {', '.join(map(str, unknown))}"))
            continue
        out.append((f"item {i}", {k: ("" if v is None else v) for k, v in item.items()}))
    return out


def _booking(row: dict[str, Any], categories: Collection[str]) -> Booking:
    for f in REQUIRED:
        if not isinstance(row.get(f), str) or not row[f].strip():
            raise ValueError(f"`{f}` is missing")
    for f in ("person", "name", "status"):
        if f in row and not isinstance(row[f], str):
            raise ValueError(f"`{f}` must be text")
    code = row["code"].strip()
    if not CODE.match(code):
        raise ValueError(f"code {code!r}: 4 to 32 of A-Z, a-z, 0-9 and -")
    category = row["category"].strip()
    if category not in categories:
        raise ValueError(f"no category {category!r} in this hall")
    try:
        day = date.fromisoformat(row["date"].strip())
    except ValueError:
        raise ValueError(f"date {row['date']!r} is not YYYY-MM-DD") from None
    start, end = (_hhmm(row[f].strip(), f) for f in ("start", "end"))
    if start >= end:
        raise ValueError(f"the slot {row['start']}–{row['end']} ends before it starts")
    person = (row.get("person") or "").strip().lower() or None
    if person is not None and not PERSON.match(person):
        raise ValueError("person is not a person key (32 to 128 hex digits); never put an ID number here")
    name = (row.get("name") or "").strip() or None
    if name is not None:
        if len(name) > 32:
            raise ValueError("name is longer than 32 characters")
        if len(name) > 1 and "*" not in name:
            raise ValueError(f"name {name[0]}… is not masked (张* / 张*三): a full name never enters the hall's record")
        if re.search(r"\d{6,}", name):
            raise ValueError("name holds a number")
    status = (row.get("status") or "").strip().lower()
    if status not in BOOKED + CANCELLED:
        raise ValueError(f"status {status!r}: booked or cancelled")
    return Booking(code=code, category=category, day=day, start=start, end=end, person=person, name=name,
                   cancelled=status in CANCELLED)


def _hhmm(s: str, field: str) -> time:
    if not HHMM.match(s):
        raise ValueError(f"{field} {s!r} is not HH:MM")
    h, m = s.split(":")
    return time(int(h), int(m))


def kind_of(name: str, content_type: str = "") -> str | None:
    """``csv`` or ``json`` by a file name's suffix or an HTTP content type."""
    ct = content_type.split(";")[0].strip().lower()
    if ct in ("application/json", "text/json") or name.lower().endswith(".json"):
        return "json"
    if ct in ("text/csv", "application/csv") or name.lower().endswith(".csv"):
        return "csv"
    return None


# == the feed ============================================================================================
class Transient(Exception):
    """A failure worth trying again (no connection, time-out, 408, 429, 5xx)."""


class Feed:
    """Reads the folder and polls the URL of ``[appointments]``; hands what it read to ``submit``."""

    FOLDER_POLL_S = 2.0  # seconds between looks at the folder (a stat per file)

    def __init__(self, cfg: AppointmentsSection, categories: Collection[str],
                 submit: Callable[[BookingsIn], None]):
        self.cfg = cfg
        self.categories = frozenset(categories)
        self.submit = submit
        self._seen: dict[str, tuple[int, int]] = {}  # file -> (mtime_ns, size) last read
        self._url_digest: str | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.http: Any = None
        #: counters and the last problems, for logs and tests
        self.imports = 0
        self.errors: dict[str, list[RowError]] = {}

    def start(self) -> Feed:
        if self.cfg.folder:
            self._threads.append(threading.Thread(target=self._watch, name="bookings-folder", daemon=True))
        if self.cfg.url:
            import httpx

            self.http = httpx.Client(timeout=self.cfg.timeout_seconds, headers={"User-Agent": "hallq-bookings/1"})
            self._threads.append(threading.Thread(target=self._poll, name="bookings-url", daemon=True))
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(self.cfg.timeout_seconds + 2)
        if self.http is not None:
            self.http.close()

    # -- one source -------------------------------------------------------------------------------------
    def take_in(self, source: str, text: str, kind: str) -> None:
        bookings, errors = parse(text, kind, self.categories)
        self.errors[source] = errors
        for e in errors:
            log.warning("bookings %s %s (skipped)", source, e)
        log.info("bookings %s: %d read, %d malformed rows skipped", source, len(bookings), len(errors))
        self.imports += 1
        self.submit(BookingsIn(source=source, bookings=tuple(bookings)))

    # -- the folder -------------------------------------------------------------------------------------
    def scan(self) -> None:
        """Read every booking file of the folder that is new or changed since the last look."""
        folder = Path(self.cfg.folder or "")
        try:
            files = sorted(p for p in folder.iterdir() if p.is_file() and kind_of(p.name))
        except OSError as exc:
            log.warning("bookings folder %s unreadable: %s", folder, exc.strerror or exc)
            return
        for p in files:
            try:
                st = p.stat()
                mark = (st.st_mtime_ns, st.st_size)
                if self._seen.get(p.name) == mark:
                    continue
                text = p.read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError) as exc:
                log.warning("bookings file %s unreadable: %s", p, exc)
                continue
            if p.stat().st_mtime_ns != mark[0]:
                continue  # still being written: read it at the next look
            self._seen[p.name] = mark
            self.take_in(p.name, text, kind_of(p.name) or "csv")

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                self.scan()
            except Exception:  # the feed must outlive one bad file
                log.exception("bookings folder scan failed")
            self._stop.wait(self.FOLDER_POLL_S)

    # -- the URL ----------------------------------------------------------------------------------------
    def fetch(self) -> tuple[str, str] | None:
        """GET the URL once (with retries); (text, kind), or None when it failed or did not change."""
        from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

        retrying = Retrying(
            retry=retry_if_exception_type(Transient),
            stop=stop_after_attempt(self.cfg.retries + 1),
            wait=wait_exponential(multiplier=self.cfg.retry_min_seconds, min=self.cfg.retry_min_seconds,
                                  max=max(self.cfg.retry_min_seconds, self.cfg.poll_seconds / 2)),
            sleep=self._stop.wait,
            reraise=True,
        )
        try:
            text, ctype = retrying(self._get)
        except Transient as exc:
            log.warning("bookings %s: %s (gave up for now; next try in %.0f s)", self.cfg.url, exc,
                        self.cfg.poll_seconds)
            return None
        except ValueError as exc:
            log.error("bookings %s: %s", self.cfg.url, exc)
            return None
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if digest == self._url_digest:
            return None
        self._url_digest = digest
        return text, kind_of(str(self.cfg.url), ctype) or "json"

    def _get(self) -> tuple[str, str]:
        import httpx

        try:
            r = self.http.get(self.cfg.url)
        except httpx.TransportError as exc:
            raise Transient(f"{type(exc).__name__}: {exc}") from None
        if r.status_code in (408, 429) or r.status_code >= 500:
            raise Transient(f"HTTP {r.status_code}")
        if not r.is_success:
            raise ValueError(f"HTTP {r.status_code}: {r.text[:200]}")
        if len(r.content) > 20_000_000:
            raise ValueError("the answer is larger than 20 MB")
        return r.text, r.headers.get("content-type", "")

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                got = self.fetch()
                if got is not None:
                    self.take_in("url", *got)
            except Exception:
                log.exception("bookings poll failed")
            self._stop.wait(self.cfg.poll_seconds)
