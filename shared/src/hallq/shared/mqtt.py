"""The MQTT client every hallq process uses (paho-mqtt 2, callback API version 2).

What it promises:

- it connects in the background and reconnects with exponential backoff when the broker goes away,
  subscribing again to everything it was subscribed to;
- it keeps a three-valued availability topic: Last Will ``offline``, ``online`` once connected (or when
  the owner says so, after its retained state is out), ``stopped`` on a clean :meth:`HallClient.stop`;
- TCP_NODELAY is set on its socket: small request/reply messages are not held back by Nagle's algorithm;
- handlers run on one dispatcher thread, in arrival order, never on paho's network thread, so a slow
  handler cannot stall acknowledgements or keepalives; a handler that raises is logged and counted;
- :meth:`HallClient.request` publishes a request with a ``req`` id, matches the controller's reply, and
  times out cleanly (:class:`RequestTimeout`) when nobody answers; a refusal raises :class:`RequestError`.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import os
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from .config import BrokerURL
from .schemas import (
    OFFLINE,
    ONLINE,
    REPLY_TYPES,
    STOPPED,
    ErrorReply,
    PayloadError,
    Schema,
    decode,
    encode,
    peek_req,
)
from .topics import HallTopics, check_client_id

log = logging.getLogger(__name__)

QOS = 1


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    retain: bool


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
    ):
        self.broker = BrokerURL.parse(broker) if isinstance(broker, str) else broker
        self.topics = HallTopics(hall)
        self.client_id = check_client_id(client_id)
        self.status_topic = status_topic or self.topics.device_status(client_id)
        self.auto_online = auto_online
        #: Called on the dispatcher thread after each (re)connection, subscriptions restored.
        self.on_connected: Callable[[], None] | None = None
        #: Handler exceptions caught so far (they are logged too).
        self.handler_errors = 0

        self._handlers: list[tuple[str, Handler]] = []
        self._subscriptions: set[str] = set()
        self._pending: dict[str, concurrent.futures.Future[bytes]] = {}
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._net_up = False  # guarded by _lock: the socket is connected and subscriptions were sent
        self._stopping = False
        self._inbox: queue.Queue[Any] = queue.Queue()
        self._dispatcher: threading.Thread | None = None
        self._req_prefix = f"{os.getpid():x}-{int(time.time() * 1000) % 10**9:x}"
        self._reply_topic = self.topics.reply(client_id)

        c = paho.Client(
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
        return self

    def wait_connected(self, timeout: float | None = None) -> bool:
        return self._connected.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def stop(self, *, status: str = STOPPED, timeout: float = 2.0) -> None:
        """Publish ``stopped`` (retained), disconnect cleanly and end the threads."""
        self._stopping = True
        if self._connected.is_set():
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
    def subscribe(self, topic_filter: str, handler: Handler) -> None:
        """Call ``handler`` (on the dispatcher thread) for every message matching ``topic_filter``."""
        with self._lock:
            self._handlers.append((topic_filter, handler))
            new = topic_filter not in self._subscriptions
            self._subscriptions.add(topic_filter)
            send_now = new and self._net_up
        if send_now:
            self._paho.subscribe(topic_filter, qos=QOS)

    # -- requests ----------------------------------------------------------------------------------
    def new_req(self) -> str:
        """A request id unique for this client (also across restarts of the process)."""
        return f"{self._req_prefix}-{next(_counter)}"

    def request_async(self, action: str, payload: Schema) -> concurrent.futures.Future[bytes]:
        """Publish a request; the future resolves to the raw reply payload."""
        req = getattr(payload, "req", None)
        if not isinstance(req, str):
            raise ValueError("a request payload needs a `req`")
        fut: concurrent.futures.Future[bytes] = concurrent.futures.Future()
        with self._lock:
            self._pending[req] = fut
        self.publish(self.topics.request(self.client_id, action), payload)
        return fut

    def request(self, action: str, payload: Schema, *, timeout: float = 5.0, resend_every: float = 0) -> Schema:
        """Send a request and wait for its answer.

        Returns the action's reply type (``TakeReply``, ``WindowReply``, ``RateReply``); raises
        :class:`RequestError` for a refusal and :class:`RequestTimeout` when no answer comes in time.
        With ``resend_every`` the same request (same ``req``) is published again at that interval; the
        controller answers repeats with its first answer, so this cannot take effect twice.
        """
        req: str = payload.req  # type: ignore[attr-defined]
        fut = self.request_async(action, payload)
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RequestTimeout(action, req, timeout)
                wait = min(left, resend_every) if resend_every > 0 else left
                try:
                    raw = fut.result(wait)
                    break
                except concurrent.futures.TimeoutError:
                    if resend_every > 0 and deadline - time.monotonic() > 0:
                        self.publish(self.topics.request(self.client_id, action), payload)
        finally:
            with self._lock:
                self._pending.pop(req, None)
        return parse_reply(action, raw)

    # -- paho callbacks (network thread: never block here) -----------------------------------------
    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.warning("broker %s refused the connection: %s", self.broker, reason)
            return
        with self._lock:
            filters = sorted(self._subscriptions | {self._reply_topic})
            self._net_up = True
        client.subscribe([(f, QOS) for f in filters])
        self._inbox.put(_CONNECTED)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        with self._lock:
            self._net_up = False
        if self._connected.is_set() and not self._stopping:
            log.warning("lost the broker %s (%s); reconnecting", self.broker, reason)
        self._connected.clear()

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        if msg.topic == self._reply_topic:
            req = peek_req(msg.payload)
            with self._lock:
                fut = self._pending.get(req) if req else None
            if fut is not None and not fut.done():
                fut.set_result(msg.payload)
            return
        self._inbox.put(Message(msg.topic, msg.payload, bool(msg.retain)))

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
                    self.publish_status(ONLINE)
                continue
            with self._lock:
                handlers = [h for f, h in self._handlers if paho.topic_matches_sub(f, item.topic)]
            for h in handlers:
                self._run(h, item)

    def _run(self, fn: Callable[..., None] | None, *args: Any) -> None:
        if fn is None:
            return
        try:
            fn(*args)
        except Exception:
            self.handler_errors += 1
            log.exception("handler %r failed", fn)


_CONNECTED = object()


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
