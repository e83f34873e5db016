"""The embedded MQTT broker (amqtt), for the demo on a machine that has no Mosquitto.

Production halls run Mosquitto (the tests too); ``hallq demo`` starts this one only when no broker is given,
and ``hallq broker`` runs it alone (to try a device on a laptop).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
import threading

import click

log = logging.getLogger(__name__)
# amqtt's state machine logs every transition at INFO: noise in the demo's logs and on `hallq broker`
logging.getLogger("transitions").setLevel(logging.WARNING)


class BrokerError(RuntimeError):
    """The embedded broker cannot start (one line: where and why)."""


def check_port(host: str, port: int) -> None:
    """Raise :class:`BrokerError` when ``host:port`` cannot be listened on (in use, not an address here),
    before amqtt tries and logs its own chain of tracebacks."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise BrokerError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's server does
        try:
            s.bind(addr)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise BrokerError(f"port {port} on {host} is in use: another broker (Mosquitto?) or program listens "
                                  f"there; choose another --port, or use that broker") from None
            raise BrokerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _config(host: str, port: int) -> dict:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "max_connections": 500}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


class _SnapshotDict(dict):
    """A dict whose iteration walks a snapshot of its keys.

    amqtt 0.12's broker walks its broker-wide subscription dict across ``await``s when a client connects
    (``for topic in self._subscriptions: await ...``) while other clients' SUBSCRIBEs add keys to it; the
    connecting client is then dropped with "dictionary changed size during iteration". When many devices
    connect at once (the demo's start) that happened a dozen times. Iterating a snapshot is what the code
    means to do.
    """

    def __iter__(self):
        return iter(list(super().keys()))


class EmbeddedBroker:
    """An amqtt broker on its own thread and event loop: ``start()``, then ``stop()``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883):
        self.host, self.port = host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._broker = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> EmbeddedBroker:
        check_port(self.host, self.port)
        self._thread = threading.Thread(target=self._run, name="amqtt", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the embedded broker did not start in time")
        if self._error is not None:
            cause: BaseException = self._error
            while cause.__cause__ is not None:  # amqtt wraps the OSError of the listener in its own errors
                cause = cause.__cause__
            raise BrokerError(f"the embedded broker cannot start on {self.host}:{self.port}: {cause}") from None
        return self

    def _run(self) -> None:
        from amqtt.broker import Broker

        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            self._broker = Broker(_config(self.host, self.port), loop=loop)
            if isinstance(getattr(self._broker, "_subscriptions", None), dict):
                self._broker._subscriptions = _SnapshotDict(self._broker._subscriptions)
            loop.run_until_complete(self._broker.start())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.close()

    def stop(self) -> None:
        if self._loop is None or self._broker is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
        try:
            fut.result(10)
        except Exception:
            log.exception("embedded broker shutdown")
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)
        self._broker = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@click.command("broker")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=1883, show_default=True, type=click.IntRange(1, 65535))
def command(host: str, port: int) -> None:
    """Run the embedded MQTT broker (amqtt) until interrupted."""
    try:
        broker = EmbeddedBroker(host, port).start()
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"hallq broker listening on {broker.url}", err=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    broker.stop()
