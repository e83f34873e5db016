"""The retained payloads the controller publishes: ``queue``, ``window/{n}/state`` and ``board``."""

from __future__ import annotations

from datetime import datetime

from hallq.shared.schemas import Board, CalledTicket, CategoryQueue, LastService, QueueState, WindowState

from .estimate import estimate_wait
from .state import HallState


def queue_state(state: HallState, now: datetime) -> QueueState:
    """The ``queue`` payload: per category, how many wait and the estimate for a new normal ticket."""
    cats = {}
    for c in state.cfg.categories:
        n = state.waiting_count(c.code)
        cats[c.code] = CategoryQueue(waiting=n, est_wait_min=estimate_wait(state, c.code, n, now))
    return QueueState(at=now, categories=cats)


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

