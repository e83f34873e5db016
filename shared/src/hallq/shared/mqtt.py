"""The MQTT client every hallq process uses (paho-mqtt 2, callback API version 2).

What it promises:

- it connects in the background and reconnects with exponential backoff when the broker goes away,
  subscribing again to everything it was subscribed to;
- it keeps a three-valued availability topic: Last Will ``offline``, ``online`` once connected (or when
  the owner says so, after its retained state is out), ``stopped`` on a clean :meth:`HallClient.stop`;
- TCP_NODELAY is set on its socket: small request/reply messages are not held back by Nagle's algorithm;
- handlers run on one dispatcher thread, in arrival order, never on paho's network thread, so a slow
  handler cannot stall acknowledgements or keepalives; a handler that raises is logged and counted (a
  handler that only hands the message on without blocking, like the controller's queue of requests, may ask
  to run on the network thread instead: ``subscribe(..., inline=True)``, which spares a thread hop per message);
- :meth:`HallClient.request` publishes a request with a ``req`` id, matches the controller's reply, and
  times out cleanly (:class:`RequestTimeout`) when nobody answers; a refusal raises :class:`RequestError`;
- nothing that runs on paho's network thread can raise: a payload that cannot be decoded in any way (bad
  UTF-8, nesting too deep, not JSON) is counted and logged once per topic (:meth:`HallClient.bad_payload`);
  if the network thread or the dispatcher dies all the same, a watchdog ends the process with exit code 70
  (``EX_SOFTWARE``) so that its supervisor restarts it, rather than leaving it alive and deaf;
- while the broker cannot be reached it says so at once and then every ``unreachable_log_every`` seconds,
  naming the broker and the reason (connection refused, no such host, TLS, not authorised, …);
- a request is never queued while the link is down (:class:`LinkDown` at once), and a request given up on
  is taken out of paho's outgoing queue, so a reconnection never delivers a request its sender already
  reported as failed (no ghost tickets);
- a request carries its deadline (``ttl_ms``: what is left of half its ``timeout``, on every copy sent,
  :data:`~hallq.shared.schemas.REPLY_WAIT`): the controller refuses it ``expired`` unless it applies it in
  time, and :meth:`HallClient.request` waits as long again, so a request it reports as unanswered was never
  served (the controller may have been stalled, the broker slow, ...).

The hall speaks MQTT 3.1.1 (the Pico pads' ``umqtt.simple`` and the demo's amqtt broker know no other), so the
deadline is in the payload rather than in MQTT 5's Message Expiry Interval; every message carries the
monotonic time it reached this process (:attr:`Message.received`), and every request copy the time it was sent
on the sender's monotonic clock (``sent``): from the two the controller counts the deadline from the send, so
that time spent in the broker or in the socket of a stalled controller counts too (MQTT 5's expiry would not
see the latter: a message already in the controller's socket is out of the broker's hands).
"""

from __future__ import annotations

import collections
import concurrent.futures
import errno
import itertools
import logging
import os
import queue
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from .config import BrokerURL
from .schemas import (
    OFFLINE,
    ONLINE,
    REPLY_TYPES,
    REPLY_WAIT,
    STOPPED,
    ErrorReply,
    PayloadError,
    Schema,
    Sent,
    decode,
    encode,
    peek_req,
    shorten,
)
from .topics import HallTopics, check_client_id

log = logging.getLogger(__name__)

QOS = 1

#: Exit code when the client's threads died under the process (``EX_SOFTWARE`` of sysexits.h).
EXIT_DEAD_LOOP = 70
#: Which handlers match a topic is worked out once per topic and kept for this many topics (then forgotten).
MATCHES_KEPT = 4096


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    retain: bool
    #: ``time.monotonic()`` when paho's network thread read it off the socket (a request's deadline counts
    #: from here: the time it then waits in this process's queues is the controller's, not the network's)
    received: float = 0.0


Handler = Callable[[Message], None]


class RequestError(Exception):
    """The controller refused a request: ``code`` from the contract, ``message`` for people."""

    def __init__(self, code: str, message: str, req: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.req = req


class RequestTimeout(TimeoutError):
    """Nobody answered a request in time (the controller or the broker is unreachable)."""

    def __init__(self, action: str, req: str, timeout: float):
        super().__init__(f"no answer to {action} request {req!r} within {timeout:g} s")
        self.action = action
        self.req = req


class LinkDown(RequestTimeout):
    """The request was not sent: the link to the broker is down (it is not queued for later either)."""

    def __init__(self, action: str, req: str):
        TimeoutError.__init__(self, f"{action} request {req!r} not sent: no link to the broker")
        self.action = action
        self.req = req


def describe_connect_error(exc: BaseException, host: str, port: int, tls: bool = False) -> str:
    """Why a connection to the broker failed, in words a technician acts on."""
    if isinstance(exc, socket.gaierror):
        return f"no such host {host!r} ({exc.strerror or exc})"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: the broker's certificate is not trusted ({exc.verify_message or exc})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    if tls and isinstance(exc, ConnectionResetError | BrokenPipeError | EOFError):
        return f"TLS: the handshake was cut off ({exc.strerror or exc}); is {host}:{port} a TLS listener?"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused (nothing listens on {host}:{port})"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out (host down or a firewall drops the packets)"
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return f"unreachable network or host ({exc.strerror})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"


def describe_connack(reason: Any) -> str:
    """Why the broker refused the MQTT connection (its CONNACK reason)."""
    text = str(reason)
    if getattr(reason, "value", None) in (4, 5, 0x86, 0x87, 0x8C) or "authori" in text.lower() or "password" in text.lower():
        return f"auth: {text} (check the user name, password or client certificate)"
    return f"refused by the broker: {text}"


class _Paho(paho.Client):
    """paho's client, remembering why the last connection attempt failed (paho's callback is not told)."""

    last_connect_error: BaseException | None = None

    def reconnect(self) -> paho.MQTTErrorCode:
        try:
            return super().reconnect()
        except BaseException as exc:
            self.last_connect_error = exc
            raise


_counter = itertools.count(1)


class HallClient:
    """One MQTT connection of a hall device or of the controller."""

    def __init__(
        self,
        broker: BrokerURL | str,
        hall: str,
        client_id: str,
        *,
        status_topic: str | None = None,
        auto_online: bool = True,
        persistent_session: bool = False,
        keepalive: int = 15,
        min_reconnect_delay: float = 0.5,
        max_reconnect_delay: float = 30.0,
        unreachable_log_every: float = 30.0,
        on_fatal: Callable[[str], None] | None = None,
    ):
        self.broker = BrokerURL.parse(broker) if isinstance(broker, str) else broker
        self.topics = HallTopics(hall)
        self.client_id = check_client_id(client_id)
        self.status_topic = status_topic or self.topics.device_status(client_id)
        self.auto_online = auto_online
        #: Called on the dispatcher thread after each (re)connection, subscriptions restored.
        self.on_connected: Callable[[], None] | None = None
        #: Called on the dispatcher thread when the link is lost (not on a clean stop).
        self.on_disconnected: Callable[[], None] | None = None
        #: Called on paho's network thread with each incoming topic (replies to this client's requests aside):
        #: False drops the message there, before it is queued for the handlers (the controller's gate against
        #: a flood: ``hallq.controller.core.limits.Gate``). It must be cheap and must not block.
        self.prefilter: Callable[[str], bool] | None = None
        #: Handler exceptions caught so far (they are logged too).
        self.handler_errors = 0
        #: Exceptions caught on paho's network thread (a bug if ever non-zero; logged).
        self.network_errors = 0
        #: Payloads that could not be decoded, per topic (each topic is logged once).
        self.decode_errors: collections.Counter[str] = collections.Counter()
        #: Failed connection attempts since the last successful one.
        self.connect_failures = 0
        #: Why the broker is unreachable, or None while connected / not yet tried.
        self.unreachable_reason: str | None = None
        self.unreachable_log_every = unreachable_log_every
        #: What to do when the network thread or the dispatcher died: default, end the process (exit 70).
        self.on_fatal: Callable[[str], None] = on_fatal or _exit_process

        self._handlers: list[tuple[str, Handler]] = []
        self._inline_handlers: list[tuple[str, Handler]] = []  # run on paho's network thread (``inline``)
        #: topic -> (its inline handlers, its dispatcher handlers); cleared on every subscribe
        self._matches: dict[str, tuple[tuple[Handler, ...], tuple[Handler, ...]]] = {}
        self._subscriptions: set[str] = set()  # asked of the broker (on every connection)
        self._paused: set[str] = set()  # unsubscribed for now (:meth:`pause`)
        self._pending: dict[str, concurrent.futures.Future[bytes]] = {}
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._net_up = False  # guarded by _lock: the socket is connected and subscriptions were sent
        self._stopping = False
        self._inbox: queue.Queue[Any] = queue.Queue()
        self._dispatcher: threading.Thread | None = None
        self._watchdog: threading.Thread | None = None
        self._net_thread: threading.Thread | None = None
        self._last_unreachable_log = -1e9
        self._req_mids: dict[str, list[int]] = {}
        self._req_prefix = f"{os.getpid():x}-{int(time.time() * 1000) % 10**9:x}"
        self._reply_topic = self.topics.reply(client_id)

        c = _Paho(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=not persistent_session,
            protocol=paho.MQTTv311,
        )
        if self.broker.username:
            c.username_pw_set(self.broker.username, self.broker.password)
        if self.broker.tls:
            c.tls_set(ca_certs=self.broker.ca_file, cert_reqs=ssl.CERT_REQUIRED)
        c.will_set(self.status_topic, OFFLINE, qos=QOS, retain=True)
        c.reconnect_delay_set(min_delay=min_reconnect_delay, max_delay=max_reconnect_delay)
        c.max_inflight_messages_set(100)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_socket_open = self._on_socket_open
        c.on_connect_fail = self._on_connect_fail
        self._keepalive = keepalive
        self._paho = c

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> HallClient:
        """Connect in the background (returns at once; see :meth:`wait_connected`)."""
        self._stopping = False
        if self._dispatcher is None:
            self._dispatcher = threading.Thread(target=self._dispatch, name=f"mqtt-{self.client_id}", daemon=True)
            self._dispatcher.start()
        self._paho.connect_async(self.broker.host, self.broker.port, keepalive=self._keepalive)
        self._paho.loop_start()
        self._net_thread = self._paho._thread  # (paho keeps no public handle on its thread)
        if self._watchdog is None:
            self._watchdog = threading.Thread(target=self._watch, name=f"mqtt-watch-{self.client_id}", daemon=True)
            self._watchdog.start()
        return self

    def wait_connected(self, timeout: float | None = None) -> bool:
        return self._connected.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def stop(self, *, status: str | None = STOPPED, timeout: float = 2.0) -> None:
        """Publish ``stopped`` (retained; None: publish nothing), disconnect cleanly (so the Last Will is not
        sent) and end the threads."""
        self._stopping = True
        self._watchdog = None
        if self._connected.is_set() and status is not None:
            try:
                self._paho.publish(self.status_topic, status, qos=QOS, retain=True).wait_for_publish(timeout)
            except (RuntimeError, ValueError):  # not connected after all
                pass
        self._paho.disconnect()
        self._paho.loop_stop()
        self._connected.clear()
        if self._dispatcher is not None:
            self._inbox.put(None)
            if self._dispatcher is not threading.current_thread():
                self._dispatcher.join(timeout)
            self._dispatcher = None
        with self._lock:
            for fut in self._pending.values():
                fut.cancel()
            self._pending.clear()

    def __enter__(self) -> HallClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- publishing --------------------------------------------------------------------------------
    def publish(
        self, topic: str, payload: Schema | bytes | str, *, retain: bool = False, qos: int = QOS
    ) -> paho.MQTTMessageInfo:
        data = payload if isinstance(payload, bytes | str) else encode(payload)
        return self._paho.publish(topic, data, qos=qos, retain=retain)

    def publish_status(self, status: str = ONLINE) -> None:
        """Set this client's availability (``online``, ``stopped``)."""
        self.publish(self.status_topic, status, retain=True)

    # -- subscribing -------------------------------------------------------------------------------
    def subscribe(self, topic_filter: str, handler: Handler, *, inline: bool = False,
                  broker_filters: list[str] | None = None) -> None:
        """Call ``handler`` (on the dispatcher thread) for every message matching ``topic_filter``.

        ``inline``: call it on paho's network thread instead, as soon as the message is read (after
        :attr:`prefilter`). Only for a handler that never blocks and does next to nothing (puts the message
        on a queue of its own): it holds up every other message and acknowledgement while it runs.

        ``broker_filters``: ask the broker for these filters instead of ``topic_filter`` (each narrower than
        it, e.g. one per device), so that :meth:`pause` can stop one of them; the handler is still matched
        against ``topic_filter`` alone (one match per message, however many filters)."""
        filters = [topic_filter] if broker_filters is None else list(broker_filters)
        with self._lock:
            (self._inline_handlers if inline else self._handlers).append((topic_filter, handler))
            self._matches.clear()
            new = [f for f in filters if f not in self._subscriptions and f not in self._paused]
            self._subscriptions.update(new)
            send_now = bool(new) and self._net_up
        if send_now:
            self._paho.subscribe([(f, QOS) for f in new])

    def pause(self, topic_filter: str) -> bool:
        """Unsubscribe ``topic_filter`` at the broker, which then stops sending what matches it (messages it
        has already queued for this client still come), until :meth:`resume`, across reconnections too.
        Safe on any thread, paho's network thread included. False if it was not subscribed or is paused."""
        with self._lock:
            if topic_filter not in self._subscriptions:
                return False
            self._subscriptions.discard(topic_filter)
            self._paused.add(topic_filter)
            send_now = self._net_up
        if send_now:
            self._paho.unsubscribe(topic_filter)
        return True

    def resume(self, topic_filter: str) -> bool:
        """Subscribe again a filter that :meth:`pause` stopped; False if it was not paused."""
        with self._lock:
            if topic_filter not in self._paused:
                return False
            self._paused.discard(topic_filter)
            self._subscriptions.add(topic_filter)
            send_now = self._net_up
        if send_now:
            self._paho.subscribe(topic_filter, qos=QOS)
        return True

    @property
    def paused(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._paused)

    # -- requests ----------------------------------------------------------------------------------
    def new_req(self) -> str:
        """A request id unique for this client (also across restarts of the process)."""
        return f"{self._req_prefix}-{next(_counter)}"

    def request_async(self, action: str, payload: Schema) -> concurrent.futures.Future[bytes]:
        """Publish a request; the future resolves to the raw reply payload.

        Raises :class:`LinkDown` (and sends nothing, now or later) while the link to the broker is down.
        Call :meth:`give_up` when no longer waiting, so that an unsent copy is never delivered later.
        """
        req = getattr(payload, "req", None)
        if not isinstance(req, str):
            raise ValueError("a request payload needs a `req`")
        fut: concurrent.futures.Future[bytes] = concurrent.futures.Future()
        with self._lock:
            if not self._net_up:
                raise LinkDown(action, req)
            self._pending[req] = fut
        self._publish_request(action, req, payload)
        return fut

    def _publish_request(self, action: str, req: str, payload: Schema) -> None:
        info = self.publish(self.topics.request(self.client_id, action), payload)
        with self._lock:
            self._req_mids.setdefault(req, []).append(info.mid)

    def give_up(self, req: str) -> int:
        """Stop waiting for ``req`` and take its copies not yet acknowledged by the broker out of paho's
        outgoing queue, so that a reconnection cannot deliver them. Returns how many were taken out."""
        with self._lock:
            self._pending.pop(req, None)
            mids = self._req_mids.pop(req, [])
        return self._drop_unacked(mids)

    def _drop_unacked(self, mids: list[int]) -> int:
        c = self._paho
        dropped = 0
        with c._out_message_mutex:  # (paho has no public way to withdraw a queued publish)
            for mid in mids:
                m = c._out_messages.pop(mid, None)
                if m is None:
                    continue  # acknowledged by the broker already
                dropped += 1
                if m.state == paho.mqtt_ms_wait_for_puback and c._inflight_messages > 0:
                    c._inflight_messages -= 1
                m.info.rc = paho.MQTT_ERR_CONN_LOST
                m.info._set_as_published()  # (wake anyone waiting on it)
        return dropped

    def request(
        self, action: str, payload: Schema, *, timeout: float = 5.0, resend_every: float = 0, deadline: bool = True
    ) -> Schema:
        """Send a request and wait for its answer.

        Returns the action's reply type (``TakeReply``, ``WindowReply``, ``RateReply``); raises
        :class:`RequestError` for a refusal and :class:`RequestTimeout` when no answer comes in time.
        With ``resend_every`` the same request (same ``req``) is published again at that interval; the
        controller answers repeats with its first answer, so this cannot take effect twice.

        With ``deadline`` every copy carries ``ttl_ms`` (:func:`request_ttl` of ``timeout``, less the time
        gone since the first was sent): the controller applies it in that time or refuses it ``expired``, and
        this waits as long again for the answer (:data:`~hallq.shared.schemas.REPLY_WAIT`). So when this raises
        :class:`RequestTimeout`, the request was not served: no ghost ticket of a kiosk that gave up.
        """
        req: str = payload.req  # type: ignore[attr-defined]
        start = time.monotonic()
        ttl = request_ttl(timeout) if deadline else None
        stamp = (lambda: _with_ttl(payload, ttl - (time.monotonic() - start))) if ttl is not None else (lambda: payload)
        fut = self.request_async(action, stamp())
        deadline_at = start + timeout
        try:
            while True:
                left = deadline_at - time.monotonic()
                if left <= 0:
                    raise RequestTimeout(action, req, timeout)
                wait = min(left, resend_every) if resend_every > 0 else left
                try:
                    raw = fut.result(wait)
                    break
                except concurrent.futures.TimeoutError:
                    # copies go on past the ttl (carrying 1 ms): the controller answers them only from its
                    # cache, so an answer lost after the request was served still reaches us (a ticket issued
                    # while the reply was lost is the citizen's), and a request never served stays unserved
                    if resend_every > 0 and deadline_at - time.monotonic() > 0 and self._net_up:
                        self._publish_request(action, req, stamp())
        finally:
            self.give_up(req)
        return parse_reply(action, raw)

    # -- paho callbacks (network thread: never block here, never raise) ------------------------------
    # paho re-raises a callback's exception on its network thread, which ends the thread: the process
    # would stay alive and deaf. Every callback is therefore wrapped; `_watch` catches what is left.
    def _guarded(self, what: str, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            self.network_errors += 1
            log.exception("%s failed on the network thread (caught; the connection goes on)", what)

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._guarded("on_connect", self._handle_connect, client, reason)

    def _handle_connect(self, client: paho.Client, reason: Any) -> None:
        if reason.is_failure:
            self._unreachable(describe_connack(reason))
            return
        if self.connect_failures:
            log.info("reached the broker %s after %d failed attempts", self.broker, self.connect_failures)
        self.connect_failures = 0
        self.unreachable_reason = None
        with self._lock:
            filters = sorted(self._subscriptions | {self._reply_topic})
            self._net_up = True
        client.subscribe([(f, QOS) for f in filters])
        self._inbox.put(_CONNECTED)

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        self._guarded("on_connect_fail", self._handle_connect_fail)

    def _handle_connect_fail(self) -> None:
        exc = getattr(self._paho, "last_connect_error", None)
        self._unreachable(describe_connect_error(exc, self.broker.host, self.broker.port, self.broker.tls) if exc else "unknown")

    def _unreachable(self, reason: str) -> None:
        """Log that the broker cannot be reached: at once, then every ``unreachable_log_every`` seconds."""
        self.connect_failures += 1
        changed = reason != self.unreachable_reason
        self.unreachable_reason = reason
        now = time.monotonic()
        if changed or now - self._last_unreachable_log >= self.unreachable_log_every:
            self._last_unreachable_log = now
            log.error(
                "cannot reach the broker %s: %s (attempt %d; retrying every %g s at most)",
                self.broker, reason, self.connect_failures, self._paho._reconnect_max_delay,
            )

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._guarded("on_disconnect", self._handle_disconnect, reason)

    def _handle_disconnect(self, reason: Any) -> None:
        with self._lock:
            was_up = self._net_up
            self._net_up = False
        if self._connected.is_set() and not self._stopping:
            log.warning("lost the broker %s (%s); reconnecting", self.broker, reason)
        self._connected.clear()
        if was_up and not self._stopping:
            self._inbox.put(_DISCONNECTED)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        self._guarded("on_message", self._handle_message, msg)

    def _handle_message(self, msg: paho.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:  # brokers refuse such topics; never let one through all the same
            self.bad_payload(repr(msg._topic[:80]), "the topic is not UTF-8")
            return
        if topic == self._reply_topic:
            req = peek_req(msg.payload)
            with self._lock:
                fut = self._pending.get(req) if req else None
            if fut is not None and not fut.done():
                fut.set_result(msg.payload)
            elif req is None:
                self.bad_payload(topic, "a reply without a readable `req`")
            return
        if self.prefilter is not None and not self.prefilter(topic):
            return
        inline, handlers = self._matching(topic)
        m = Message(topic, msg.payload, bool(msg.retain), time.monotonic())
        for h in inline:
            self._run(h, m)
        if handlers:
            self._inbox.put(m)

    def _matching(self, topic: str) -> tuple[tuple[Handler, ...], tuple[Handler, ...]]:
        """The inline and the dispatcher handlers whose filters match ``topic`` (worked out once per topic)."""
        m = self._matches.get(topic)
        if m is None:
            with self._lock:  # (a subscribe clears the memo under the same lock: never a stale entry kept)
                m = (tuple(h for f, h in self._inline_handlers if paho.topic_matches_sub(f, topic)),
                     tuple(h for f, h in self._handlers if paho.topic_matches_sub(f, topic)))
                if len(self._matches) >= MATCHES_KEPT:  # a swarm of topics: start again
                    self._matches.clear()
                self._matches[topic] = m
        return m

    def bad_payload(self, topic: str, error: object) -> None:
        """Count a payload that could not be decoded; the first one on each topic is logged."""
        topic = shorten(topic, 160)
        self.decode_errors[topic] += 1
        if self.decode_errors[topic] == 1:
            log.warning(
                "a payload on %s does not fit the contract: %s (counted; further ones on this topic are not logged)",
                topic, shorten(str(error), 200),
            )

    # -- dispatcher thread --------------------------------------------------------------------------
    def _dispatch(self) -> None:
        while True:
            item = self._inbox.get()
            if item is None:
                return
            if item is _CONNECTED:
                self._connected.set()
                log.info("connected to %s as %s", self.broker, self.client_id)
                self._run(self.on_connected)
                if self.auto_online:
                    self._run(self.publish_status, ONLINE)
                continue
            if item is _DISCONNECTED:
                self._run(self.on_disconnected)
                continue
            for h in self._matching(item.topic)[1]:
                self._run(h, item)

    def _run(self, fn: Callable[..., None] | None, *args: Any) -> None:
        if fn is None:
            return
        try:
            fn(*args)
        except PayloadError as exc:  # a handler that lets a bad payload through: counted like the others
            topic = args[0].topic if args and isinstance(args[0], Message) else "?"
            self.bad_payload(topic, exc)
        except Exception:
            self.handler_errors += 1
            log.exception("handler %r failed", fn)

    # -- watchdog ------------------------------------------------------------------------------------
    def _watch(self) -> None:
        """End the process when paho's network thread or the dispatcher died under a running client."""
        me = threading.current_thread()
        while self._watchdog is me and not self._stopping:
            time.sleep(0.5)
            if self._watchdog is not me or self._stopping:
                return
            for name, t in (("network", self._net_thread), ("dispatcher", self._dispatcher)):
                if t is not None and not t.is_alive() and not self._stopping:
                    why = f"the MQTT {name} thread of {self.client_id} died; the process cannot serve any more"
                    log.critical("%s: exiting with code %d so that the supervisor restarts it", why, EXIT_DEAD_LOOP)
                    self.on_fatal(why)
                    return


def request_ttl(timeout: float) -> float:
    """The deadline (seconds) a request waited for ``timeout`` seconds carries: ``timeout /``
    :data:`~hallq.shared.schemas.REPLY_WAIT`; the rest is for the controller's commit and the answer's way back."""
    return timeout / REPLY_WAIT


#: This process's monotonic clock, as a request's ``sent.clock`` names it.
SEND_CLOCK = secrets.token_hex(8)


def _with_ttl(payload: Schema, seconds: float) -> Schema:
    """``payload`` carrying ``ttl_ms`` = ``seconds`` (at least 1 ms) and the time it is sent (``sent``)."""
    return msgspec.structs.replace(  # type: ignore[call-arg]
        payload, ttl_ms=min(max(int(seconds * 1000), 1), 600_000),
        sent=Sent(clock=SEND_CLOCK, ms=int(time.monotonic() * 1000)))


def _exit_process(why: str) -> None:
    logging.shutdown()
    os._exit(EXIT_DEAD_LOOP)


_CONNECTED = object()
_DISCONNECTED = object()


def parse_reply(action: str, raw: bytes) -> Schema:
    """Decode a reply for ``action``; a refusal raises :class:`RequestError`."""
    req = peek_req(raw) or "?"
    try:
        err = decode(raw, ErrorReply)
    except PayloadError:
        pass
    else:
        raise RequestError(err.error.code, err.error.message, err.req)
    try:
        return decode(raw, REPLY_TYPES[action])
    except PayloadError as exc:
        raise RequestError("bad_reply", f"the controller's answer does not fit the contract: {exc}", req) from None
