"""Per-client limits and the priorities a take may claim: the controller's second line after the broker's ACL.

Rules (issue 9 §5), with the numbers from ``[limits]`` in ``hall.toml`` (:class:`~..config.LimitsSection`):

- **Rate.** Every request of a client takes a token from its bucket (``burst`` tokens, refilled at ``rate``
  per second of hall time). A new request that finds the bucket empty is answered ``busy`` and is NOT
  kept: the same ``req`` sent again later is handled then. A repeat of a ``req`` already answered gets
  its first answer whatever the bucket holds (a kiosk must never hear ``busy`` for a number it holds).
  The bucket refills on the clock as given (not the core's steady time): a clock stepped back refills
  nothing for a moment and then goes on, it does not freeze the hall's clients until it catches up.
- **Gate.** Beyond twice its rate or burst, a client's requests are dropped unanswered before they are even
  decoded (:class:`Gate`, on the app's MQTT thread): a flood costs a look-up per message. A listed device
  that goes on flooding is **silenced**: the controller unsubscribes its request topic for a cool-off (10 s,
  doubling while it floods again, up to 5 min) and drops what of it is still queued, so its flood no longer
  queues in the broker in front of every other device's requests (a device event ``flooding_requests``).
- **Open tickets.** A taker (kiosk, sms, or any client of a hall without ``[[devices]]``) holds at most
  ``open_tickets`` waiting tickets; the next take is answered ``too_many``.
- The role comes from ``[[devices]]``; a client not listed there is ``unlisted``: the controller of a hall
  that lists its devices reads their request topics only, so it never hears one (the core would answer it
  ``not_allowed``); in a hall without ``[[devices]]`` every client is ``default``.
- **The reply cache is bounded.** Answers that changed something are kept (memory and record) for
  repeated ``req``s, at most ``replies`` of them (the oldest go first; the record keeps two days at most).
  Refusals that changed nothing are kept in memory only, at most ``refusals`` of them for
  ``refusal_keep_s``: a flood of refused requests costs a bounded amount of memory and no rows.
- **Priorities need a voucher** (:func:`vouch`): ``elderly`` is vouched for by the ID card the kiosk read
  (the birth date on it), ``appointment`` by a check-in, and the priorities that need a document
  (``military``, ``disabled``, ``pregnant``; ``elderly`` without a card) by a staff member: a take on the
  ``staff`` channel (from a kiosk whose ``staff_priorities`` in ``[[devices]]`` list the priority, or any
  client of a hall without ``[[devices]]``); such a kiosk asks a staff member's PIN before it sends one
  (``[staff]`` in ``kiosk.toml``), and a touch take claims none.
  Phones (``sms``, ``qr``) vouch for nothing. The ticket keeps which channel vouched (``TicketRec.vouched``,
  the ``vouched`` column of ``tickets``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..config import HallFile, RoleLimit
from .state import CachedReply, HallState, Refused

#: A sweep of full buckets runs when more clients than this have one.
SWEEP_AT = 1024


@dataclass(slots=True)
class Bucket:
    tokens: float
    at: datetime


def role_of(state: HallState, client: str) -> str:
    if state.devices is None:
        return "default"
    d = state.devices.get(client)
    return "unlisted" if d is None else d[0]


def limit_of(state: HallState, client: str) -> RoleLimit:
    return getattr(state.cfg.limits, role_of(state, client))


def admit(state: HallState, client: str, now: datetime, *, force: bool = False) -> bool:
    """Take a token from ``client``'s bucket at ``now`` (the clock as given); False when it is empty.

    With ``force`` (a repeat answered from the cache) the token is taken if there is one, and the answer is
    True anyway."""
    lim = limit_of(state, client)
    b = state.buckets.get(client)
    if b is None:
        if len(state.buckets) >= SWEEP_AT:
            _sweep(state, now)
        b = state.buckets[client] = Bucket(float(lim.burst), now)
    else:
        elapsed = (now - b.at).total_seconds()
        if elapsed > 0:
            b.tokens = min(float(lim.burst), b.tokens + elapsed * lim.rate)
        b.at = now  # also when the clock went back: refill goes on from here
    if b.tokens >= 1.0:
        b.tokens -= 1.0
        return True
    return force


def _sweep(state: HallState, now: datetime) -> None:
    """Forget the buckets that are full again by now (a full bucket and no bucket are the same)."""
    for client in [c for c, b in state.buckets.items()
                   if b.tokens + max((now - b.at).total_seconds(), 0.0) * limit_of(state, c).rate
                   >= limit_of(state, c).burst]:
        del state.buckets[client]


def check_open(state: HallState, client: str) -> None:
    """Refuse a take when ``client`` already holds its role's ``open_tickets`` waiting tickets."""
    n = state.open_by_client.get(client, 0)
    cap = limit_of(state, client).open_tickets
    if n >= cap:
        raise Refused("too_many", f"{client!r} holds {n} waiting tickets; at most {cap} at once")


def remember(state: HallState, reply: CachedReply, durable: bool) -> None:
    """Keep an answer for repeats of its ``req``, within the bounds of ``[limits]``."""
    lim = state.cfg.limits
    key = (reply.client, reply.req)
    if durable:
        state.replies[key] = reply
        while len(state.replies) > lim.replies:
            del state.replies[next(iter(state.replies))]
        return
    refusals = state.refusals
    refusals[key] = reply
    while refusals:
        first = next(iter(refusals.values()))
        if len(refusals) > lim.refusals or (reply.at - first.at).total_seconds() > lim.refusal_keep_s:
            del refusals[(first.client, first.req)]
        else:
            break


def cached(state: HallState, client: str, req: str) -> CachedReply | None:
    key = (client, req)
    return state.replies.get(key) or state.refusals.get(key)


#: The channels that vouch for a priority by themselves (besides a staff member's confirmation).
VOUCHERS: dict[str, tuple[str, ...]] = {
    "elderly": ("idcard",),  # the birth date on the ID card the kiosk read
    "appointment": ("appointment",),  # a check-in against a booking (see .appointments)
    "military": (),  # 军人证 / 退役军人优待证: a document a person checks
    "disabled": (),  # 残疾人证
    "pregnant": (),
}


def vouch(state: HallState, client: str, channel: str | None, priority: str | None) -> str | None:
    """The channel that vouches for ``priority`` on a take from ``client``, or :class:`Refused`."""
    if priority is None:
        return None
    if channel in VOUCHERS.get(priority, ()):
        return channel
    if channel == "staff":  # a staff member confirmed it on the kiosk (their PIN: hallq.kiosk.staff)
        if state.devices is None:  # no inventory: no kiosk config to ask; a take by staff is taken at its word
            return "staff"
        if priority in state.staff_priorities.get(client, ()):
            return "staff"  # a kiosk where staff confirm this priority (导引员 at the door, 导服台)
    how = {"appointment": "a check-in of a booking", "elderly": "the ID card or a staff member"}.get(
        priority, "a staff member who checks the document")
    raise Refused("not_allowed", f"a {channel or 'take'} request cannot claim priority {priority!r}: "
                                 f"it needs {how} (优先需凭证件)")


#: The gate (:class:`Gate`) lets a client through at up to this many times its role's rate and burst.
GATE_FACTOR = 2.0
#: A listed device whose requests the gate dropped this many times within :data:`SILENCE_WINDOW_S` is
#: flooding: the controller stops reading its requests (unsubscribes its request topic) for a cool-off.
SILENCE_DROPS = 50
SILENCE_WINDOW_S = 1.0
#: The first cool-off (seconds); it doubles, up to :data:`COOL_MAX_S`, while the device floods again within
#: :data:`COOL_MEMORY_S` of being heard again, and starts over after that.
COOL_S = 10.0
COOL_MAX_S = 300.0
COOL_MEMORY_S = 120.0


class Gate:
    """The cheap first check, before a request is even decoded or queued: a client sending more than
    :data:`GATE_FACTOR` times its role's rate (or burst) gets those requests dropped without an answer.

    The core's buckets (:func:`admit`) answer ``busy`` up to that point; beyond it a flood costs the
    controller a dictionary look-up per message, so the requests of every other client are not queued behind
    it (the app calls this on the MQTT dispatcher thread, with a monotonic time in real seconds; ``speed``
    is the hall clock's pace, above 1 for the demo's faster clock). ``dropped`` counts per client.

    But a flood still reaches the controller: the broker queues it in front of the controller's one connection,
    and the other devices' requests wait behind it there. So a device listed in ``[[devices]]`` (the controller
    then reads each listed device's request topic on its own subscription) whose requests the gate drops
    :data:`SILENCE_DROPS` times within :data:`SILENCE_WINDOW_S` is **silenced**: :meth:`admit` returns False
    and :meth:`silence` then names the cool-off, and the app unsubscribes that device's request topic, so the
    broker drops the flood instead of queueing it; :meth:`due` says when to read it again. A device that floods
    again soon after gets twice the cool-off (up to :data:`COOL_MAX_S`). Honest devices never come near: they
    send well under their rate, and the gate drops nothing of theirs. (On an open broker a device's topic is
    anyone's, so a flood on a listed device's topic silences that device; the provisioned broker's ACL lets
    only the device itself publish there.)"""

    def __init__(self, cfg: HallFile, speed: float = 1.0):
        self.cfg = cfg
        self.speed = max(speed, 1.0)
        self.devices = None if cfg.devices is None else {d.id: d.role for d in cfg.devices}
        self.buckets: dict[str, list[float]] = {}  # client -> [tokens, at]
        self.dropped: dict[str, int] = {}
        self._recent: dict[str, list[float]] = {}  # listed client -> [drops in this window, window start]
        #: silenced devices: client -> (until when, its cool-off in seconds)
        self.silenced: dict[str, tuple[float, float]] = {}
        self._heard_again: dict[str, tuple[float, float]] = {}  # client -> (when, the cool-off it had)
        self.silences = 0

    def silence(self, client: str, now: float) -> float | None:
        """After :meth:`admit` dropped ``client``'s request: the cool-off (seconds) if ``client`` is flooding and
        not silenced yet (the caller stops reading it now), else None."""
        if self.devices is None or client not in self.devices or client in self.silenced:
            return None
        r = self._recent.get(client)
        if r is None or now - r[1] > SILENCE_WINDOW_S:
            self._recent[client] = [1.0, now]
            return None
        r[0] += 1.0
        if r[0] < SILENCE_DROPS:
            return None
        del self._recent[client]
        cool = COOL_S
        heard = self._heard_again.pop(client, None)
        if heard is not None and now - heard[0] <= COOL_MEMORY_S:
            cool = min(heard[1] * 2.0, COOL_MAX_S)
        self.silenced[client] = (now + cool, cool)
        self.silences += 1
        return cool

    def due(self, now: float) -> list[str]:
        """The silenced devices whose cool-off is over (the caller reads them again); forgotten as silenced."""
        # (called on another thread than silence(): list() copies the items in one step under the GIL)
        out = [c for c, (until, _) in list(self.silenced.items()) if now >= until]
        for c in out:
            self._heard_again[c] = (now, self.silenced.pop(c)[1])
            self.buckets[c] = [0.0, now]  # an empty bucket: a flood that goes on is seen again at once
        return out

    def _limit(self, client: str) -> RoleLimit:
        role = "default" if self.devices is None else self.devices.get(client, "unlisted")
        return getattr(self.cfg.limits, role)

    def admit(self, client: str, now: float) -> bool:
        lim = self._limit(client)
        rate, burst = lim.rate * self.speed * GATE_FACTOR, lim.burst * GATE_FACTOR
        b = self.buckets.get(client)
        if b is None:
            if len(self.buckets) >= SWEEP_AT:
                for c in [c for c, (tok, at) in self.buckets.items()
                          if tok + (now - at) * self._limit(c).rate * self.speed * GATE_FACTOR
                          >= self._limit(c).burst * GATE_FACTOR]:
                    del self.buckets[c]
                if len(self.buckets) >= 16 * SWEEP_AT:  # a swarm of made-up client ids: forget the oldest
                    for c in sorted(self.buckets, key=lambda c: self.buckets[c][1])[: len(self.buckets) // 2]:
                        del self.buckets[c]
            b = self.buckets[client] = [burst, now]
        else:
            b[0] = min(burst, b[0] + max(now - b[1], 0.0) * rate)
            b[1] = now
        if b[0] >= 1.0:
            b[0] -= 1.0
            return True
        self.dropped[client] = self.dropped.get(client, 0) + 1
        if len(self.dropped) > SWEEP_AT:
            self.dropped.clear()
        return False


#: A sender's clock offset is the least seen over the last one to two windows of this many seconds: a new
#: least follows a drifting clock (50 ppm over 20 minutes is 60 ms) and a lost fast path is forgotten.
OFFSET_WINDOW_S = 600.0


class SenderClocks:
    """How long a request copy took from its sender to this controller, beyond the quickest lately seen.

    A request's ``sent`` is the sender's monotonic time (ms) and ``received`` the controller's (s); their
    difference is the clocks' offset plus the copy's delay. The least difference seen lately from that clock
    is the offset plus the quickest delay, so ``difference - least`` is how much longer this copy took: time in
    the broker's queue, in a stalled controller's socket, in the controller's own queue. The deadline counts
    from the send so estimated (never later than the true send: the quickest delay is not subtracted).
    The first copy from a clock (a sender that just started) is taken as quick. Bounded: at most
    :data:`SWEEP_AT` times 4 senders are remembered (a swarm of made-up ones clears them)."""

    def __init__(self) -> None:
        self.by: dict[str, list[Any]] = {}  # client -> [clock, least of the last window, least now, window start]

    def delay(self, client: str, clock: str, sent_ms: int, received: float) -> float:
        diff = received - sent_ms / 1000.0
        e = self.by.get(client)
        if e is None or e[0] != clock:
            if len(self.by) >= 4 * SWEEP_AT:
                self.by.clear()
            self.by[client] = [clock, diff, diff, received]
            return 0.0
        if received - e[3] >= OFFSET_WINDOW_S:
            e[1], e[2], e[3] = e[2], diff, received
        elif diff < e[2]:
            e[2] = diff
        return max(0.0, diff - min(e[1], e[2]))
