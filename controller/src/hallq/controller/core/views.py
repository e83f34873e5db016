"""The retained payloads the controller publishes: ``queue``, ``window/{n}/state`` and ``board``."""

from __future__ import annotations

import heapq
from datetime import datetime

from hallq.shared.schemas import Board, CalledTicket, CategoryQueue, LastService, QueueState, WindowState

from .dispatch import APPOINTMENT, NORMAL, PRIORITY, rank
from .estimate import wait_estimate
from .state import LANE_CLASSES, HallState


def queue_state(state: HallState, now: datetime) -> QueueState:
    """The ``queue`` payload: per category, how many wait and the estimate for a new normal ticket (one
    play with mean services: it is made at every change; a take's own estimate samples, see :mod:`.estimate`)."""
    cats = {}
    for c in state.cfg.categories:
        n = state.waiting_count(c.code)
        e = wait_estimate(state, c.code, n, now, samples=1)  # one play: every change publishes it
        cats[c.code] = CategoryQueue(waiting=n, est_wait_min=e.minutes, est_wait_range=(e.low, e.high),
                                     order=queue_order(state, c.code),
                                     oldest_at=oldest_waiting(state, c.code) if n else None)
    return QueueState(at=now, categories=cats)


def queue_order(state: HallState, category: str) -> list[str]:
    """The numbers waiting in ``category``'s queue in the order the rules call them as things stand: the
    transfers to the category, then its lanes merged by :func:`~.dispatch.rank`. A ticket's index is its
    :func:`~.dispatch.ahead_of` (the SMS gateway's "three ahead" and the follow pages read it)."""
    guard = state.lead
    transfers = sorted((t for t in state.transfers if t.to_window is None and t.queue == category),
                       key=lambda t: rank(t, guard))
    lanes = [state.lanes.get((category, cls)) or () for cls in (NORMAL, PRIORITY, APPOINTMENT)]
    return [t.number for t in heapq.merge(transfers, *lanes, key=lambda t: rank(t, guard))]


def oldest_waiting(state: HallState, category: str) -> datetime | None:
    """When the longest-waiting ticket of ``category``'s queue was taken (the dashboard's long-wait alert)."""
    heads = [lane[0].issued_at for cls in LANE_CLASSES if (lane := state.lanes[(category, cls)])]
    heads += [t.issued_at for t in state.transfers if t.to_window is None and t.queue == category]
    return min(heads) if heads else None


def window_state(state: HallState, no: int) -> WindowState:
    """The ``window/{n}/state`` payload."""
    w = state.windows[no]
    t = state.tickets.get(w.current) if w.current else None
    ticket = None
    if t is not None and t.called_at is not None:
        ticket = CalledTicket(number=t.number, category=t.category, called_at=t.called_at, recalls=t.recalls)
    last = None
    if w.last is not None and w.last.ended_at is not None:
        last = LastService(number=w.last.number, outcome=w.last.outcome, ended_at=w.last.ended_at)  # type: ignore[arg-type]
    return WindowState(window=no, status=w.status, ticket=ticket, staff=w.staff, last=last)  # type: ignore[arg-type]


def board(state: HallState) -> Board:
    """The ``board`` payload: the last calls, newest first."""
    return Board(calls=list(state.board))

