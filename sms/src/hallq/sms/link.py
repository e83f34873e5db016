"""The modem link: one thread that owns the modem, drains the outbox and hands received texts on.

It sets the modem up (no echo, numeric errors, SIM PIN if one is configured, PDU mode, ``+CMTI`` for new
texts), then loops: read what the modem says (a ``+CMTI`` -> ``AT+CMGR`` -> hand the text to the app, which
commits it -> ``AT+CMGD``), send the next due outbox message, and every ``health_every`` seconds ask for the
signal, the registration and the SIM. On start and after every reset it lists the modem's storage
(``AT+CMGL=4``): texts that came while nobody listened are handled, stored parts nobody owns are deleted.

Sending one part (see :mod:`.store` for why): ``AT+CMGW`` stores it (index committed), ``AT+CMSS`` sends it
(the try committed first), then ``AT+CMGD``. A part whose earlier ``AT+CMSS`` may have gone is first looked
up with ``AT+CMGR``: ``STO SENT`` means it went. ``+CMS ERROR`` -> retried later with exponential backoff
(given up after ``max_attempts``); a modem that does not answer -> the port is reopened and the modem set up
again, with a growing pause while it stays away; garbage on the line is skipped.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from hallq.shared.schemas import ModemHealth

from . import at, pdu
from .modem import AtModem, CommandError, ModemError
from .store import Store

log = logging.getLogger(__name__)

#: CMS errors after which a retry cannot help (the number or the message is wrong).
PERMANENT_CMS = {21, 28, 38, 96, 97, 98, 99, 111, 127, 304, 305}


@dataclass(frozen=True, slots=True)
class Received:
    """A text read from the modem: the decoded PDU and a stable id (a hash of the PDU)."""

    id: str
    deliver: pdu.Deliver


class ModemLink:
    """The thread that owns the modem. ``on_text(texts) -> None`` must commit them (in one transaction)
    before it returns; only then are the modem's copies deleted."""

    def __init__(self, modem: AtModem, store: Store, today: Callable[[], date], *,
                 on_text: Callable[[list[Received]], None], on_health: Callable[[ModemHealth], None],
                 pin: str | None = None, health_every: float = 30.0, max_attempts: int = 8,
                 backoff: tuple[float, float] = (2.0, 300.0)):
        self.modem = modem
        self.store = store
        self.today = today
        self.on_text = on_text
        self.on_health = on_health
        self.pin = pin
        self.health_every = health_every
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.kick = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready = False
        self._health = ModemHealth(online=False)
        self._health_at = 0.0
        self._away_since: float | None = None
        self._reopen_pause = 0.5
        #: counters, for logs and tests
        self.sent_parts = 0
        self.reopens = 0

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> ModemLink:
        self._thread = threading.Thread(target=self._run, name="modem", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.kick.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.modem.close()

    @property
    def ready(self) -> bool:
        return self._ready

    # -- the loop ------------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self._ready:
                    self._setup()
                self._step()
            except ModemError as exc:
                self._lost(exc)
            except Exception:  # nothing may stop the link; the next loop tries again
                log.exception("modem link failed; going on")
                time.sleep(1.0)

    def _lost(self, exc: Exception) -> None:
        if self._ready or self._away_since is None:
            log.warning("the modem does not answer (%s); reopening %s", exc, self.modem.url)
            self._away_since = time.monotonic()
        self._ready = False
        self._set_health(online=False, detail=str(exc)[:200])
        self.modem.close()
        self._stop.wait(self._reopen_pause)
        self._reopen_pause = min(self._reopen_pause * 2, 30.0)

    def _setup(self) -> None:
        if not self.modem.is_open:
            self.reopens += 1
            self.modem.open()
        self.modem.rebooted = False
        # after a reset the modem may echo and be in text mode; a stray prompt is left with ESC
        self.modem.command("AT", timeout=3)
        self.modem.command("ATE0")
        self.modem.command("AT+CMEE=1")
        sim = self._sim()
        if sim == "pin" and self.pin:
            self.modem.command(f'AT+CPIN="{self.pin}"')
            sim = self._sim()
        if sim != "ready":
            self._set_health(online=True, sim=sim, detail="the SIM card is not ready")
            raise ModemError(f"the SIM card is not ready ({sim})")
        self.modem.command("AT+CMGF=0")
        self.modem.command('AT+CSCS="GSM"')
        self.modem.command("AT+CNMI=2,1,0,0,0")
        self._reconcile()
        self._ready = True
        self._reopen_pause = 0.5
        if self._away_since is not None:
            log.info("the modem at %s is back after %.1f s", self.modem.url, time.monotonic() - self._away_since)
        else:
            log.info("the modem at %s is ready", self.modem.url)
        self._away_since = None
        self._check_health(force=True)

    def _sim(self) -> str:
        try:
            lines = self.modem.command("AT+CPIN?", answer=("+CPIN:",))
        except CommandError as exc:
            if exc.result.kind == "CME" and exc.result.code in ("10", "SIM not inserted"):
                return "absent"
            raise
        return at.cpin(lines[0]) if lines else "unknown"

    def _reconcile(self) -> None:
        """List the storage: handle received texts, delete stored parts that no outbox row owns."""
        stored = at.cmgl(self.modem.command("AT+CMGL=4", answer=("+CMGL:",), pdu_lines=True, timeout=30))
        ours = self.store.stored_indices()
        self._received([(s.index, s.pdu) for s in stored if s.stat in (at.REC_UNREAD, at.REC_READ)])
        for s in stored:
            if s.stat not in (at.REC_UNREAD, at.REC_READ) and s.index not in ours:
                self.modem.command(f"AT+CMGD={s.index}")

    def _step(self) -> None:
        self.modem.poll(0.05)
        indices = [hit[1] for hit in map(at.cmti, self.modem.take_urcs()) if hit is not None]
        if indices:
            self._read(indices)
        if self.modem.rebooted:
            log.warning("the modem restarted; setting it up again")
            self._ready = False
            return
        self._send_due()
        self._check_health()
        if self.kick.is_set():
            self.kick.clear()

    # -- receiving -----------------------------------------------------------------------------------
    def _read(self, indices: list[int]) -> None:
        """Read the new texts at ``indices`` (a burst is read, committed and deleted together)."""
        got: list[tuple[int, str]] = []
        for index in dict.fromkeys(indices):
            lines = self.modem.command(f"AT+CMGR={index}", answer=("+CMGR:",), pdu_lines=True)
            try:
                s = at.cmgr(lines, index)
            except at.AtParseError as exc:
                log.warning("stored text %d could not be read (%s); deleting it", index, exc)
                self.modem.command(f"AT+CMGD={index}")
                continue
            if s is not None and s.stat in (at.REC_UNREAD, at.REC_READ):
                got.append((index, s.pdu))
        self._received(got)

    def _received(self, stored: list[tuple[int, str]]) -> None:
        texts = []
        for index, pdu_hex in stored:
            try:
                d = pdu.decode_deliver(pdu_hex)
            except pdu.PduError as exc:
                log.warning("a received PDU at %d does not decode (%s); deleting it", index, exc)
            else:
                texts.append(Received(hashlib.sha256(pdu_hex.upper().encode()).hexdigest()[:20], d))
        if texts:
            self.on_text(texts)  # committed when it returns
        for index, _ in stored:
            self.modem.command(f"AT+CMGD={index}")

    # -- sending -------------------------------------------------------------------------------------
    def _send_due(self) -> None:
        o = self.store.next_outgoing(time.time())
        if o is None:
            return
        phone = self.store.phone_of(o.person, o.day)
        if phone is None:
            log.warning("outbox %d (%s): the number is gone (a later day); not sent", o.id, o.key)
            self.store.give_up(o.id, "the number was deleted at the end of its day")
            return
        parts = pdu.submit_pdus("+86" + phone, o.text, ref=o.id % 256)
        if o.parts_done >= len(parts):
            self.store.part_sent(o.id, len(parts))
            return
        part = parts[o.parts_done]
        index = o.stored_index
        if index is not None and o.stored_tries > 0:
            # an AT+CMSS of this part may have gone before a crash, reset or time-out: ask the modem
            s = self._stored(index)
            if s is not None and s.stat == at.STO_SENT and _same(s.pdu, part.hex):
                self._part_went(o, index, len(parts))
                return
            if s is None or s.stat != at.STO_UNSENT or not _same(s.pdu, part.hex):
                self.store.part_unstored(o.id)
                index = None
        if index is None:
            try:
                lines = self.modem.command(f"AT+CMGW={part.tpdu_length}", answer=("+CMGW:",), data=part.hex)
                index = at.stored_number(lines[0], "CMGW") if lines else None
            except CommandError as exc:
                self._failed(o, exc)
                return
            if index is None:
                raise ModemError("AT+CMGW gave no storage index")
            self.store.part_stored(o.id, index)
        self.store.part_trying(o.id)
        try:
            self.modem.command(f"AT+CMSS={index}", answer=("+CMSS:",), timeout=max(self.modem.timeout, 60))
        except CommandError as exc:
            self._failed(o, exc)
            return
        self._part_went(o, index, len(parts))

    def _part_went(self, o, index: int, total: int) -> None:
        done = self.store.part_sent(o.id, total)
        self.sent_parts += 1
        try:
            self.modem.command(f"AT+CMGD={index}")
        except CommandError:
            pass  # deleted at the next reconcile
        if done:
            log.info("sent %s (%d part%s)", o.key, total, "s" if total > 1 else "")

    def _stored(self, index: int) -> at.Stored | None:
        try:
            return at.cmgr(self.modem.command(f"AT+CMGR={index}", answer=("+CMGR:",), pdu_lines=True), index)
        except CommandError:
            return None  # an empty or invalid index
        except at.AtParseError:
            return None

    def _failed(self, o, exc: CommandError) -> None:
        cms = exc.cms
        if (cms in PERMANENT_CMS) or o.attempts + 1 >= self.max_attempts:
            log.error("outbox %d (%s) given up after %d tries: %s", o.id, o.key, o.attempts + 1, exc)
            self.store.give_up(o.id, str(exc))
            return
        delay = min(self.backoff[0] * 2 ** o.attempts, self.backoff[1])
        log.warning("outbox %d (%s): %s; trying again in %.0f s", o.id, o.key, exc, delay)
        self.store.retry_later(o.id, delay, str(exc))

    # -- health --------------------------------------------------------------------------------------
    def _check_health(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._health_at < self.health_every:
            return
        self._health_at = time.monotonic()
        try:
            csq = self.modem.command("AT+CSQ", answer=("+CSQ:",))
            reg = self.modem.command("AT+CREG?", answer=("+CREG:",))
            dbm = at.csq_dbm(csq[0]) if csq else None
            registration = at.creg(reg[0]) if reg else "unknown"
        except (CommandError, at.AtParseError) as exc:
            self._set_health(online=True, sim="ready", detail=f"health query failed: {exc}")
            return
        self._set_health(online=True, sim="ready", registration=registration, signal_dbm=dbm)

    def _set_health(self, **kw) -> None:
        pending, failed = self.store.outbox_counts(self.today().isoformat())
        h = ModemHealth(outbox=pending, failed_today=failed, **kw)
        if h != self._health:
            self._health = h
            self.on_health(h)

    def health(self) -> ModemHealth:
        return self._health


def _after_mr(pdu_hex: str) -> str:
    """An SMS-SUBMIT PDU from its destination address on (the service centre part, the first octet and
    the message reference are what a modem may rewrite when it stores or sends it)."""
    h = pdu_hex.strip().upper()
    try:
        smsc = int(h[:2], 16)
    except ValueError:
        return ""
    return h[2 + 2 * smsc + 4:]


def _same(stored_hex: str, sent_hex: str) -> bool:
    """Whether a stored PDU is the part we wrote."""
    a = _after_mr(stored_hex)
    return bool(a) and a == _after_mr(sent_hex)
