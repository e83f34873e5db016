"""The hall's pure core: numbers, dispatch, window operations and ratings as a state machine.

No IO here: no MQTT, no SQLite, no clock. Time is passed in (an aware ``datetime`` in the hall's time zone).

Where each rule lives
---------------------
- :mod:`.state`: the records (:class:`TicketRec`, :class:`CallRec`, :class:`WindowRec`, :class:`Rating`, ...)
  and :class:`HallState` with its lanes; :func:`new_state`.
- :mod:`.machine`: :func:`handle` and :func:`restore`: numbering, window operations, ratings, midnight.
- :mod:`.dispatch`: the dispatch policy, one pure function (:func:`pick_next`) the simulator reuses, and
  its lane-based twin (:func:`~.dispatch.next_for`) and :func:`ahead_of`.
- :mod:`.estimate`: the waiting-time model (:func:`wait_estimate`: minutes and the range shown on the ticket)
  and the learnt service times.
- :mod:`.views`: the retained payloads (:func:`queue_state`, :func:`window_state`, :func:`board`), and
  :class:`QueueView` (how often the ``queue`` topic's estimates are worked out).
- :mod:`.appointments`: bookings kept and the check-in rules (预约签到).
- :mod:`.limits`: per-client limits (rate, open tickets, the gate), the bounded reply cache, and which
  channel vouches for a priority.
- :mod:`.workdays`: working days (China's public holidays from ``chinesecalendar``, the hall's overrides).

Imports go one way: ``workdays`` <- ``state`` <- ``dispatch`` <- ``estimate`` <- ``machine``, ``views``;
beyond the package, only the config and the pure 好差评 mapping (:mod:`hallq.controller.haocp.record`).

API
---
``state = new_state(cfg, now)``
    An empty hall for the day of ``now`` (``cfg`` is a checked :class:`~hallq.controller.config.HallFile`).
    After a restart, :mod:`hallq.controller.storage` rebuilds the state with :func:`restore`.

``state, fx = handle(state, event, now)``
    Apply one event. ``state`` is the same object, changed in place. A refused request changes nothing,
    with one exception: ``next`` at a window that is serving finishes that ticket even when nothing else
    waits (the answer is then ``empty``). Every answer is kept, so the same ``req`` from the same client
    gets the same answer again and changes nothing. ``event`` is one of

    - :class:`Request` ``(client, payload)``: a decoded ``TakeRequest``, ``WindowRequest`` or ``RateRequest``;
      the client's role and window come from the config's ``[[devices]]``;
    - :class:`Malformed` ``(client, req, message)``: a payload that did not decode but whose ``req`` could
      be read (answered ``bad_request``, or with the first answer if that ``req`` was answered before);
    - :class:`BookingsIn` ``(source, bookings)``: bookings read from a file or the URL (see
      :mod:`.appointments`);
    - :class:`Tick` ``()``: time passes; at local midnight yesterday's waiting tickets end as ``expired``,
      numbering restarts, clerks are signed out. Every other event also rolls the day over first.

    ``fx`` is an :class:`Effects`: ``reply`` (client and encoded reply bytes, or None), ``calls``
    (:class:`~hallq.shared.schemas.Call` messages to publish, not retained), ``changed`` (which retained
    topics to publish again: ``"queue"``, ``"board"``, or a window number; build them with
    :func:`queue_state`, :func:`board`, :func:`window_state`), and ``records`` (the objects to persist:
    :class:`TicketRec`, :class:`CallRec`, :class:`WindowRec`, :class:`Rating`, :class:`StaffSession`, :class:`PauseRec`,
    :class:`Sequence`, :class:`CachedReply`, and what a rating sets off: :class:`UploadRec` (its 好差评
    record) and :class:`FollowUpRec` (a bad review to call back by its due date); the storage writes their
    state as it is at commit, and decides nothing).
"""

from . import appointments, limits
from .dispatch import Waiting, ahead_of, eligible, next_for, pick_next, rank
from .estimate import SERVICE_PRIOR_MIN, Estimate, estimate_wait, wait_estimate
from .machine import (
    BookingsIn,
    Effects,
    Event,
    Malformed,
    Request,
    Tick,
    clock_behind,
    handle,
    is_open,
    restore,
)
from .state import (
    BOARD_SIZE,
    MAX_NUMBER,
    Booking,
    BookingRec,
    CachedReply,
    CallRec,
    FollowUpRec,
    HallState,
    PauseRec,
    Rating,
    Refused,
    Sequence,
    StaffSession,
    TicketRec,
    UploadRec,
    WindowRec,
    new_state,
)
from .views import ESTIMATE_EVERY, PUBLISH_EVERY, QueueView, board, queue_estimates, queue_state, window_state

__all__ = [
    "BOARD_SIZE",
    "ESTIMATE_EVERY",
    "MAX_NUMBER",
    "PUBLISH_EVERY",
    "SERVICE_PRIOR_MIN",
    "Booking",
    "BookingRec",
    "BookingsIn",
    "CachedReply",
    "CallRec",
    "Effects",
    "Estimate",
    "Event",
    "FollowUpRec",
    "HallState",
    "Malformed",
    "PauseRec",
    "QueueView",
    "Rating",
    "Refused",
    "Request",
    "Sequence",
    "StaffSession",
    "Tick",
    "TicketRec",
    "UploadRec",
    "Waiting",
    "WindowRec",
    "ahead_of",
    "appointments",
    "board",
    "clock_behind",
    "eligible",
    "estimate_wait",
    "handle",
    "is_open",
    "limits",
    "new_state",
    "next_for",
    "pick_next",
    "queue_estimates",
    "queue_state",
    "rank",
    "restore",
    "wait_estimate",
    "window_state",
]
