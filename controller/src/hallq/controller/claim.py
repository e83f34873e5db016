"""One controller per hall: before it serves, a controller checks the broker for another one.

Two controllers of one hall (a second Pi plugged in by mistake, a service started twice on two machines)
would share one MQTT client id: the broker hands the connection to the newest, the other reconnects and
takes it back, twice a second, each republishing its own state. So a running controller publishes
``controller/instance`` (:class:`~hallq.shared.schemas.ControllerInstance`: host, pid, database, since)
retained, again every :data:`BEAT_S` seconds, and empties it on a clean stop; and a starting controller
first looks, with a connection of its own that leaves nothing behind (no Last Will, nothing published):

- a record that beats (a fresh copy arrives within :data:`LOOK_S` seconds), or a look that is cut off
  (a broker that makes the client id the user name, like the provisioned Mosquitto, gives the look the
  controller's own id: the running controller takes its connection back within a second), means another
  controller serves the hall: :class:`OtherController` names it, and this one does not start;
- no record, or one that does not beat (a controller that crashed or lost power), or this same machine's
  record of this same database (the database lock already proves that process is gone): start.

Two controllers started in the same second, or one started while the broker is unreachable, are not
caught by this look (nothing is on the broker to see yet): a running controller keeps watching
``controller/instance`` (:class:`Watch`), and when another one's record is seen beating, the one that
started later stops (the earlier one keeps serving untouched). The database lock keeps two processes of
one machine off one record.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import ssl
import threading
import time
from datetime import datetime

import paho.mqtt.client as paho
from hallq.shared.config import BrokerURL
from hallq.shared.identity import LOOK_SUFFIX
from hallq.shared.schemas import ControllerInstance, PayloadError, decode
from hallq.shared.topics import HallTopics
from paho.mqtt.enums import CallbackAPIVersion

log = logging.getLogger(__name__)

#: A running controller republishes its record this often (seconds).
BEAT_S = 2.0
#: A starting controller watches this long for a beat (more than one beat, plus a reconnection) when the
#: broker holds another controller's record ...
LOOK_S = 3.0
#: ... and this long after its subscription is acknowledged for a retained record to arrive at all.
RETAINED_S = 0.3


class OtherController(RuntimeError):
    """Another controller serves this hall on this broker."""


def describe(other: ControllerInstance, hall: str, broker: object) -> str:
    since = other.since.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return (f"another controller already serves hall {hall} on {broker}: pid {other.pid} on host {other.host}, "
            f"record {other.db}, since {since}")


class Watch:
    """While a controller serves: the records of ``controller/instance`` it sees, and whether one shows that
    another controller of the hall, started before this one, is alive (then this one must stop).

    A record is alive when it comes live (not retained: published while we listen) or when a retained copy
    of it has counted up since we last saw it (controllers sharing one client id on a broker take the
    connection from each other, so each sees the other's record only as the retained one on reconnecting).
    A retained record that never changes is a controller that is gone, and our own beat overwrites it."""

    def __init__(self, me: ControllerInstance):
        self.me = me
        self._beats: dict[str, int] = {}

    def seen(self, record: ControllerInstance, retained: bool) -> ControllerInstance | None:
        """The other controller this one must give way to, or None."""
        if record.instance == self.me.instance:
            return None
        before = self._beats.get(record.instance)
        self._beats[record.instance] = record.beat
        alive = not retained or (before is not None and before != record.beat)
        if alive and (record.since, record.instance) < (self.me.since, self.me.instance):
            return record
        return None


def new_record(db: str, since: datetime) -> ControllerInstance:
    return ControllerInstance(instance=secrets.token_hex(8), host=socket.gethostname(), pid=os.getpid(),
                              db=os.path.abspath(db), since=since)


class _Refused(Exception):
    """The broker refused the look's login."""


def look(broker: BrokerURL, hall: str, client_id: str, me: ControllerInstance, *, seconds: float = LOOK_S,
         connect_timeout: float = 5.0) -> ControllerInstance | None:
    """Raise :class:`OtherController` when another controller serves ``hall``; otherwise return the record
    left by an earlier one (or None). A broker that cannot be reached decides nothing (returns None).

    On a broker with logins the look logs in as the controller's look user (``{user}-look``, the same
    password: :data:`~hallq.shared.identity.LOOK_SUFFIX`), so the provisioned broker, which makes the client
    id the user name, does not hand it the running controller's connection; a keyring made before there
    were look users has none, and then the look logs in as the controller itself (and takes the running
    controller's connection for a moment: it reconnects within a second)."""
    if broker.username:
        try:
            return _look(broker, hall, client_id, me, seconds, connect_timeout, broker.username + LOOK_SUFFIX)
        except _Refused:
            log.info("the broker has no look user %s%s (a keyring from before them: `hallq provision init` "
                     "again, then `apply`, adds it): looking as %s", broker.username, LOOK_SUFFIX, broker.username)
    try:
        return _look(broker, hall, client_id, me, seconds, connect_timeout, broker.username)
    except _Refused:
        log.warning("cannot look for another controller of hall %s: the broker %s refuses the login", hall, broker)
        return None


def _look(broker: BrokerURL, hall: str, client_id: str, me: ControllerInstance, seconds: float,
          connect_timeout: float, username: str | None) -> ControllerInstance | None:
    topic = HallTopics(hall).controller_instance
    records: list[tuple[ControllerInstance, bool]] = []  # (record, retained)
    connected, dropped, subscribed = threading.Event(), threading.Event(), threading.Event()
    refused = threading.Event()
    leaving = threading.Event()  # our own disconnect at the end is not a connection taken back
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"{client_id}-look"[:64], clean_session=True,
                    protocol=paho.MQTTv311)
    if username:
        c.username_pw_set(username, broker.password)
    if broker.tls:
        c.tls_set(ca_certs=broker.ca_file, cert_reqs=ssl.CERT_REQUIRED)

    def on_connect(cl: paho.Client, u: object, flags: object, rc: object, props: object = None) -> None:
        if not getattr(rc, "is_failure", False):
            cl.subscribe(topic, qos=1)
            connected.set()
        else:
            refused.set()

    def on_message(cl: paho.Client, u: object, msg: paho.MQTTMessage) -> None:
        if not msg.payload:
            return  # emptied: a clean stop
        try:
            records.append((decode(msg.payload, ControllerInstance), bool(msg.retain)))
        except PayloadError as exc:
            log.warning("ignoring a controller/instance record that does not fit the contract: %s", exc)

    c.on_connect = on_connect
    c.on_subscribe = lambda *a: subscribed.set()
    c.on_message = on_message
    c.on_disconnect = lambda *a: dropped.set() if connected.is_set() and not leaving.is_set() else None
    c.connect_timeout = min(connect_timeout, 3.0)
    try:
        try:
            c.connect(broker.host, broker.port, keepalive=15)  # refused or no such host: at once
        except (OSError, ValueError) as exc:
            # nothing to look at; the controller's own client says, at once and again, why it cannot connect
            log.debug("cannot look for another controller of hall %s on %s: %s", hall, broker, exc)
            return None
        c.loop_start()
        deadline = time.monotonic() + connect_timeout
        while not connected.wait(0.05) and not refused.is_set() and time.monotonic() < deadline:
            pass
        if refused.is_set() and not connected.is_set():
            raise _Refused
        if not connected.is_set():
            log.warning("cannot look for another controller of hall %s: the broker %s does not answer", hall, broker)
            return None
        subscribed.wait(connect_timeout)
        time.sleep(RETAINED_S)  # a retained record follows the acknowledgement at once
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not dropped.is_set():
            others = [(r, retained) for r, retained in records if r.instance != me.instance]
            if not others or any(not retained for _, retained in others):
                break  # nothing retained: no controller; or a fresh beat: a live one
            if others[-1][0].host == me.host and os.path.abspath(others[-1][0].db) == me.db:
                break  # our own machine and database: decided below without waiting
            time.sleep(0.05)
    finally:
        leaving.set()
        c.disconnect()
        c.loop_stop()
    others = [r for r, _ in records if r.instance != me.instance]
    if not others:
        return None
    last = others[-1]
    beating = any(not retained for r, retained in records if r.instance != me.instance)
    if last.host == me.host and os.path.abspath(last.db) == me.db:
        return last  # this machine, this database: we hold its lock, so that process has ended
    if beating or dropped.is_set():
        raise OtherController(f"{describe(last, hall, broker)}. This one does not start: stop that one first (or "
                              "check this machine's --config and broker)")
    return last
