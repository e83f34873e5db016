"""Wiring: the hall config, the MQTT mirror, the accounts, the callers and the web app, served by uvicorn.

Its own process beside the controller: a fault here never touches numbering.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hallq.shared import clock as clock_mod
from hallq.shared.config import BrokerURL, ConfigError
from hallq.shared.mqtt import HallClient
from starlette.applications import Starlette

from . import alerts
from .accounts import Accounts
from .app import Dashboard, create_app
from .caller import Callers, Identity
from .live import LiveHall

log = logging.getLogger(__name__)


def caller_identity(cfg: Any, broker: BrokerURL, window: int) -> Identity:
    """The identity of window ``window``'s web caller: ``web-caller-{n}``, which a hall that lists its devices
    must list as a window device of that window."""
    client_id = f"web-caller-{window}"
    if cfg.devices is not None:
        d = next((d for d in cfg.devices if d.id == client_id), None)
        if d is None or d.role != "window" or d.window != window:
            raise ConfigError(f"the web caller of window {window} needs [[devices]] id = {client_id!r}, "
                              f'role = "window", window = {window} in the hall config')
    return Identity(client_id, broker)


@dataclass
class Server:
    app: Starlette
    dash: Dashboard
    accounts: Accounts
    client: HallClient
    callers: Callers

    @classmethod
    def build(cls, *, config_path: str | Path, broker: BrokerURL, db: Path | None, state: Path,
              secure_cookies: bool = False, client_id: str | None = None) -> Server:
        from hallq.controller import config as hall_config

        cfg = hall_config.load(config_path)
        clock = clock_mod.from_env(cfg.hall.timezone)
        if db is not None and not Path(db).exists():
            raise ConfigError(f"{db}: the controller's record does not exist (start the controller first, "
                              "or leave out --db to serve without history)")
        client = HallClient(broker, cfg.hall.id, client_id or "dashboard")
        live = LiveHall(client, clock.now)
        accounts = Accounts(state)
        callers = Callers(cfg.hall.id, lambda n: caller_identity(cfg, broker, n))
        history = None
        if db is not None:
            from .history import History

            history = History(Path(db), cfg, clock)
        dash = Dashboard(hall=cfg, live=live, accounts=accounts, callers=callers, clock=clock,
                         rules=alerts.Rules.of(cfg.alerts), broker=broker, db_path=db,
                         secure_cookies=secure_cookies, history=history)
        app = create_app(dash)
        live.start()
        client.start()
        return cls(app, dash, accounts, client, callers)

    def serve(self, host: str, port: int) -> None:
        import uvicorn

        config = uvicorn.Config(self.app, host=host, port=port, log_level="warning", access_log=False,
                                timeout_graceful_shutdown=2, proxy_headers=False)
        log.info("dashboard on http://%s:%d/", host, port)
        try:
            uvicorn.Server(config).run()
        finally:
            self.close()

    def close(self) -> None:
        self.callers.stop()
        self.client.stop()
        self.accounts.close()
