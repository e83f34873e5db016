"""The hall → centre contract: a hall's record rows as they travel to the city's central side.

The hall controller writes every change of its record (a ticket issued, called, finished; a call and its case;
a rating; a follow-up opened or closed; a clerk's session at a window) into a durable outbox in the same
SQLite transaction as the change itself (:mod:`hallq.controller.central_outbox`), and ships the outbox in
order as :class:`Batch` es (``POST /v1/ingest``, :data:`INGEST_PATH`). The centre (``hallq central``)
decodes every batch with these same schemas (:func:`hallq.shared.schemas.decode`) before it writes anything.

Exactly once: each outbox row has a sequence number ``seq`` that never repeats within its ``stream`` (one
stream per hall record; a new stream only when a hall starts a new SQLite record). A batch carries its first
``seq`` and consecutive rows; the centre applies ``seq`` n only after n - 1 (a gap is answered 409 with the
``seq`` it expects, and the hall sends from there), skips what it already holds (a repeated batch), and
answers with the last ``seq`` it holds (:class:`Ack`); only then does the hall delete those rows.

Each record is the whole row as the hall holds it now (field names are the hall's column names); the centre
keeps the newest version of each row, keyed by the hall and the row's own key (:data:`KEYS`).
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from .schemas import CaseKind, Level, Schema, Stats, TicketStatus

#: Where a hall posts its batches (HTTPS, ``Authorization: Bearer <the hall's token>``).
INGEST_PATH = "/v1/ingest"
#: The most rows one batch may carry (the centre refuses a larger one: 413).
MAX_BATCH = 2000

HallId = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="the hall's id ([hall] id)")]
StreamId = Annotated[str, Meta(pattern=r"^[0-9a-f]{32}$", description="the hall record's outbox stream")]
Seq = Annotated[int, Meta(ge=1, description="an outbox row's number in its stream")]
# Bounds are loose on purpose: a row the hall already holds must never be refused for a detail (the hall
# cannot skip it: its stream would stop there); the types and the enumerations are what is checked.
Text = Annotated[str, Meta(max_length=2000)]
Id = Annotated[int, Meta(ge=0)]
SmallInt = int
Window = int


class Row(Schema, tag_field="kind", kw_only=True):
    """One row of the hall's record."""


class TicketRow(Row, tag="ticket", kw_only=True):
    """``tickets``: a number issued, and what became of it. Key: (day, number)."""

    day: date
    number: Annotated[str, Meta(min_length=1, max_length=64)]
    category: Text
    seq: SmallInt
    issued_at: datetime
    priority: Text | None = None
    channel: Text | None = None
    person: Text | None = None  # the opaque per-day person key (HMAC), never an ID or phone number
    appointment: Text | None = None
    client: Text | None = None
    est_wait_min: SmallInt | None = None
    ahead: SmallInt | None = None
    status: TicketStatus
    queue: Text
    to_window: Window | None = None
    transferred_at: datetime | None = None
    window: Window | None = None
    called_at: datetime | None = None
    recalls: SmallInt = 0
    first_called_at: datetime | None = None
    finished_at: datetime | None = None
    rated: bool = False
    slot_start: datetime | None = None
    slot_end: datetime | None = None
    vouched: Text | None = None  # which channel vouched for the priority (idcard | staff | appointment)


class CallRow(Row, tag="call", kw_only=True):
    """``calls``: one call of a ticket to a window, its outcome, service time and case. Key: id."""

    id: Id
    day: date
    number: Annotated[str, Meta(min_length=1, max_length=64)]
    category: Text
    queue: Text
    window: Window
    staff_id: Text | None = None
    staff_name: Text | None = None
    called_at: datetime
    wait_s: float
    first: bool
    priority: Text | None = None
    recalls: SmallInt = 0
    ended_at: datetime | None = None
    outcome: Text
    case_id: Text | None = None
    item_code: Text | None = None
    item_name: Text | None = None
    case_kind: CaseKind | None = None


class RatingRow(Row, tag="rating", kw_only=True):
    """``ratings``: a citizen's rating of a service, tied to its call and case. Key: id."""

    id: Id
    day: date
    ticket: Annotated[str, Meta(min_length=1, max_length=64)]
    window: Window
    level: Level
    at: datetime
    received_at: datetime
    client: Text
    staff_id: Text | None = None
    staff_name: Text | None = None
    call_id: Id | None = None
    case_id: Text | None = None
    item_code: Text | None = None


class FollowUpRow(Row, tag="followup", kw_only=True):
    """``followups``: a bad rating's call-back, opened with the rating, closed by a manager. Key: id."""

    id: Id
    rating_id: Id
    day: date
    ticket: Annotated[str, Meta(min_length=1, max_length=64)]
    window: Window
    level: Level
    rated_at: datetime
    opened_at: datetime
    due: date
    staff_id: Text | None = None
    staff_name: Text | None = None
    case_id: Text | None = None
    item_code: Text | None = None
    closed_at: datetime | None = None
    called_back_by: Text | None = None
    action: Annotated[str, Meta(max_length=20000)] | None = None


class StaffSessionRow(Row, tag="staff_session", kw_only=True):
    """``staff_sessions``: a clerk signed in at a window, and until when. Key: id."""

    id: Id
    window: Window
    staff_id: Text
    staff_name: Text
    started_at: datetime
    ended_at: datetime | None = None


class HaocpRow(Row, tag="haocp", kw_only=True):
    """``haocp_outbox``: a rating's 好差评 record as the hall made it (its area code and code scheme), for the
    centre to upload when the city uploads for its halls. Key: rating_id (never changes once made)."""

    rating_id: Id
    key: Annotated[str, Meta(min_length=1, max_length=200)]
    record: Annotated[str, Meta(min_length=2, max_length=20000)]  # the JSON body the province receives
    created_at: datetime


class DeviceEventRow(Row, tag="device_event", kw_only=True):
    """``device_events``: a device's status (online / offline / stopped) or its hardware problems changed, as the
    controller saw it on the device's retained ``status`` and ``health`` topics. Key: id."""

    id: Id
    day: date  # the hall's local date of ``at``
    at: datetime  # when the controller saw the change (the hall's time and offset)
    device: Annotated[str, Meta(min_length=1, max_length=64)]  # the client id
    role: Text
    window: Window | None = None
    listed: bool = True  # listed in hall.toml [[devices]]
    status: Text  # online | offline | stopped | never_seen: the device's status after the change
    #: what is wrong with its hardware after the change (``hallq.controller.devices.problems``): printer_offline,
    #: paper_out, paper_near_end, reader_offline:<name>, modem_offline, sim_<state>, modem_<registration>, and
    #: the device's own ``errors``; empty: nothing
    problems: Annotated[list[Annotated[str, Meta(max_length=200)]], Meta(max_length=50)] = []
    change: Literal["status", "health"]  # which of the two changed (both: status)


class DailyFiguresRow(Row, tag="daily_figures", kw_only=True):
    """``daily_figures``: a closed day's figures as the hall's own report has them (``hallq.controller.stats``:
    per window, clerk, half hour and category), made once the day is over. Key: day."""

    day: date
    at: datetime  # when they were worked out
    figures: Stats


class FollowUpNoteRow(Row, tag="followup_note", kw_only=True):
    """``followup_notes`` of the hall dashboard's own database (``dashboard.db``): a manager's call-back note on
    a follow-up, shipped by the dashboard in a stream of its own. Key: id."""

    id: Id
    day: date  # the UTC date of ``at`` (the dashboard keeps notes' times in UTC)
    followup_id: Id
    at: datetime
    user: Text  # the manager's display name
    note: Annotated[str, Meta(min_length=1, max_length=2000)]


Record = (TicketRow | CallRow | RatingRow | FollowUpRow | StaffSessionRow | HaocpRow | DeviceEventRow
          | DailyFiguresRow | FollowUpNoteRow)

#: Each kind's hall table and the columns that identify one row in it.
KEYS: dict[type, tuple[str, tuple[str, ...]]] = {
    TicketRow: ("tickets", ("day", "number")),
    CallRow: ("calls", ("id",)),
    RatingRow: ("ratings", ("id",)),
    FollowUpRow: ("followups", ("id",)),
    StaffSessionRow: ("staff_sessions", ("id",)),
    HaocpRow: ("haocp_outbox", ("rating_id",)),
    DeviceEventRow: ("device_events", ("id",)),
    DailyFiguresRow: ("daily_figures", ("day",)),
    FollowUpNoteRow: ("followup_notes", ("id",)),  # in dashboard.db
}


class Batch(Schema, kw_only=True):
    """``POST /v1/ingest``: consecutive outbox rows of one hall's stream, ``first`` … ``first + len - 1``."""

    hall: HallId
    stream: StreamId
    first: Seq
    records: Annotated[list[Record], Meta(min_length=1, max_length=MAX_BATCH)]
    #: when the hall queued the first and the last of these rows (the centre logs the lag)
    queued_first: datetime
    queued_last: datetime


class Ack(Schema, kw_only=True, omit_defaults=False):
    """The centre's answer: the last ``seq`` of the stream it holds (200), or the one it needs next (409)."""

    acked: Annotated[int, Meta(ge=0)]
    expected: Seq
    error: str | None = None
    #: who uploads this hall's ratings to the province's 好差评 system: the hall itself, or the centre (the city
    #: said so: ``hallq central haocp on HALL``); the hall's own link stays the fallback (see the shipper)
    haocp: Literal["hall", "central"] = "hall"


def fields(kind: type) -> tuple[str, ...]:
    """The field names of a row kind, in order (the hall's column names)."""
    return tuple(f.name for f in msgspec.structs.fields(kind))


class CredentialsError(ValueError):
    """A credentials file that cannot be used (unreadable, malformed, readable by others)."""


@dataclass(frozen=True)
class Credentials:
    """The hall side's credentials file."""

    hall: str
    token: str

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Credentials:
        p = Path(path)
        try:
            mode = p.stat().st_mode
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise CredentialsError(f"{p}: cannot read the central credentials: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise CredentialsError(f"{p}: not a credentials file: {exc}") from None
        if mode & 0o077:
            raise CredentialsError(f"{p}: the credentials file must be readable by its owner only (chmod 600)")
        unknown = set(data) - {"hall", "token"}
        if unknown:
            raise CredentialsError(f"{p}: unknown key(s) {', '.join(sorted(unknown))}")
        hall, token = data.get("hall"), data.get("token")
        if not isinstance(hall, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", hall):
            raise CredentialsError(f"{p}: `hall` must be the hall's id")
        if not isinstance(token, str) or not re.fullmatch(r"[0-9a-f]{64}", token):
            raise CredentialsError(f"{p}: `token` must be the 64 hex digits hallq central wrote")
        return cls(hall, token)

    def write(self, path: str | os.PathLike[str]) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".new")
        fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, (f'# hallq central: this hall\'s credentials ([central] credentials in hall.toml)\n'
                          f'hall = "{self.hall}"\ntoken = "{self.token}"\n').encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, p)
        return p
