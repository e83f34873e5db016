"""Wiring: the city's MQTT mirror, the accounts, the central record's reader and the roll-up, served by
uvicorn. The roll-up runs here, on the primary, in a thread of its own; the pages read ``report_dsn``."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from hallq.dashboard.accounts import Accounts
from hallq.shared import clock as clock_mod
from hallq.shared.config import BrokerURL
from hallq.shared.mqtt import HallClient
from starlette.applications import Starlette

from .. import db
from . import figures
from .app import City, create_app
from .data import Reader
from .live import CityLive

log = logging.getLogger(__name__)

CLIENT_ID = "city-web"


class Roller:
    """Rolls the record up every ``every`` seconds (and once at start) on the primary ``dsn``."""

    def __init__(self, dsn: str, every: float, live: CityLive | None = None):
        self.dsn = dsn
        self.every = every
        self.live = live
        self._configs: dict[str, bytes] = {}  # the hall configs already kept
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0
        self.last_error: str | None = None

    def start(self) -> Roller:
        self._thread = threading.Thread(target=self._run, name="city-rollup", daemon=True)
        self._thread.start()
        return self

    def once(self) -> dict:
        with psycopg.connect(self.dsn, autocommit=True, application_name="hallq-city-rollup") as conn:
            self.keep_configs(conn)
            return figures.catch_up(conn)

    def keep_configs(self, conn: psycopg.Connection) -> None:
        """Keep each hall's latest public config (category names for the reports while it is offline)."""
        if self.live is None:
            return
        from hallq.shared.schemas import encode

        for hall in self.live.halls():
            snap = self.live.snapshot(hall)
            if snap is None or snap.config is None:
                continue
            raw = encode(snap.config)
            if self._configs.get(hall) == raw:
                continue
            conn.execute("INSERT INTO city_hall_configs (hall, config, seen_at) VALUES (%s, %s::jsonb, now())"
                         " ON CONFLICT (hall) DO UPDATE SET config = excluded.config, seen_at = excluded.seen_at",
                         (hall, raw.decode()))
            self._configs[hall] = raw

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                done = self.once()
                self.runs += 1
                if self.last_error is not None:
                    log.info("the roll-up works again")
                self.last_error = None
                if done:
                    log.info("rolled up %d day(s): %s", len(done), ", ".join(str(d) for d in sorted(done)[:5]))
            except psycopg.Error as exc:
                why = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
                if why != self.last_error:
                    log.warning("the roll-up failed (%s); trying again in %.0f s", why, self.every)
                self.last_error = why
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


@dataclass
class Server:
    app: Starlette
    city: City
    accounts: Accounts
    client: HallClient
    reader: Reader
    roller: Roller | None = None
    extra: list = field(default_factory=list)

    @classmethod
    def build(cls, *, dsn: str, report_dsn: str | None, broker: BrokerURL, state: Path, name: str, name_en: str,
              timezone: str = "Asia/Shanghai", rollup_every: float = 300.0, secure_cookies: bool = False,
              client_id: str = CLIENT_ID) -> Server:
        clock = clock_mod.from_env(timezone)
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:  # fail early, in words
            have = db.version(conn)
            if have < figures.SCHEMA_VERSION:
                raise ValueError(f"the central database has schema {have}, the city dashboard needs "
                                 f"{figures.SCHEMA_VERSION}: run `hallq central migrate` first")
        reader = Reader(report_dsn or dsn).open()
        # the city's own availability lives outside every hall's topics (hallq/<hall>/...)
        client = HallClient(broker, "city", client_id, status_topic=f"hallq-city/{client_id}/status")
        live = CityLive(client, clock.now)
        accounts = Accounts(state)
        city = City(name=name, name_en=name_en, live=live, accounts=accounts, reader=reader, clock=clock,
                    secure_cookies=secure_cookies)
        app = create_app(city)
        live.start()
        client.start()
        roller = Roller(dsn, rollup_every, live).start() if rollup_every > 0 else None
        return cls(app, city, accounts, client, reader, roller)

    def serve(self, host: str, port: int) -> None:
        import uvicorn

        config = uvicorn.Config(self.app, host=host, port=port, log_level="warning", access_log=False,
                                timeout_graceful_shutdown=2, proxy_headers=False)
        log.info("city dashboard on http://%s:%d/", host, port)
        try:
            uvicorn.Server(config).run()
        finally:
            self.close()

    def close(self) -> None:
        if self.roller is not None:
            self.roller.stop()
        self.client.stop()
        self.reader.close()
        self.accounts.close()
