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

#: The folder beside the dashboard's ``device.toml`` with the bundles of the identities it acts under (its
#: web callers, its scan-to-take page), as ``hallq provision bundle dashboard`` writes it.
IDENTITIES = "identities"


def _take_client(cfg: Any) -> str | None:
    """The client id the scan-to-take page takes numbers as (``[follow] take_client``), if it is on."""
    follow = getattr(cfg, "follow", None)
    return follow.take_client if follow is not None else None


def load_take_identity(folder: Path, cfg: Any) -> Identity | None:
    """The scan-to-take page's identity from its provisioning bundle in ``folder`` (``folder/ID/device.toml``,
    ID = ``[follow] take_client``, a kiosk device of the hall); None when the folder has none."""
    from hallq.shared.identity import load_identity

    take = _take_client(cfg)
    f = Path(folder) / (take or "") / "device.toml"
    if take is None or not f.is_file():
        return None
    ident = load_identity(f)
    if ident.role != "kiosk" or ident.device != take:
        raise ConfigError(f"{f}: the scan-to-take identity must be the kiosk device {take!r}, not "
                          f"{ident.device!r} ({ident.role})")
    if ident.hall != cfg.hall.id:
        raise ConfigError(f"{f}: the device belongs to hall {ident.hall!r}, not {cfg.hall.id!r}")
    return Identity(ident.device, ident.broker)


def load_callers(folder: Path, cfg: Any) -> dict[int, Identity]:
    """The web callers' identities from provisioning bundles: ``folder/*/device.toml`` of role ``window``,
    each listed in the hall's ``[[devices]]`` as the window device of one window. (The folder may also hold
    the scan-to-take page's kiosk identity: :func:`load_take_identity`.)"""
    from hallq.shared.identity import load_identity

    found: dict[int, Identity] = {}
    take = _take_client(cfg)
    files = sorted(f for f in Path(folder).glob("*/device.toml") if take is None or f.parent.name != take)
    if not files and load_take_identity(folder, cfg) is None:
        raise ConfigError(f"{folder}: no device bundle (*/device.toml) of a web caller in it")
    listed = {d.id: d for d in (cfg.devices or [])}
    for f in files:
        ident = load_identity(f)
        if ident.role != "window":
            raise ConfigError(f"{f}: a web caller is a window device, not a {ident.role!r} one")
        if ident.hall != cfg.hall.id:
            raise ConfigError(f"{f}: the device belongs to hall {ident.hall!r}, not {cfg.hall.id!r}")
        d = listed.get(ident.device)
        if d is None or d.role != "window" or d.window is None:
            raise ConfigError(f"{f}: {ident.device!r} is not a window device in the hall config's [[devices]]")
        if d.window in found:
            raise ConfigError(f"{f}: window {d.window} already has the web caller {found[d.window].client_id!r}")
        found[d.window] = Identity(ident.device, ident.broker)
    return found


def caller_identity(cfg: Any, broker: BrokerURL, window: int, callers: dict[int, Identity] | None = None) -> Identity:
    """The identity of window ``window``'s web caller: its provisioning bundle when the dashboard was given
    them (``--callers``), else ``web-caller-{n}`` on the dashboard's broker, which a hall that lists its
    devices must list as a window device of that window."""
    if callers is not None:
        if window not in callers:
            raise ConfigError(f"window {window} has no web caller bundle (--callers)")
        return callers[window]
    client_id = f"web-caller-{window}"
    if broker.username is not None:  # a broker with logins knows it only by its own credential
        raise ConfigError(f"the web caller of window {window} logs in as itself: give the dashboard its bundle "
                          f"({client_id}/device.toml in --callers DIR: `hallq provision bundle {client_id}`)")
    if cfg.devices is not None:
        d = next((d for d in cfg.devices if d.id == client_id), None)
        if d is None or d.role != "window" or d.window != window:
            raise ConfigError(f"the web caller of window {window} needs [[devices]] id = {client_id!r}, "
                              f'role = "window", window = {window} in the hall config')
    return Identity(client_id, broker)


def notes_shipper(cfg: Any, state: Path) -> Any:
    """The shipper of the follow-ups' notes (``dashboard.db``'s outbox) when the hall has ``[central]``.

    Credentials it cannot read do not stop the dashboard: it says so, and the notes wait in ``dashboard.db``
    (the stream starts, with every note written so far, the first time the dashboard can ship)."""
    if getattr(cfg, "central", None) is None:
        return None
    from hallq.controller.shipper import Shipper, ShipperError

    from . import notes_outbox

    try:
        return Shipper(str(state), cfg.hall.id, cfg.central, outbox=notes_outbox, what="the follow-ups' notes")
    except ShipperError as exc:
        log.error("central: the follow-ups' notes are not shipped (they wait in %s): %s", state, exc)
        return None


@dataclass
class Server:
    app: Starlette
    dash: Dashboard
    accounts: Accounts
    client: HallClient
    callers: Callers
    #: ships the follow-ups' notes of dashboard.db to the city's centre (``[central]``), else None
    shipper: Any = None

    @classmethod
    def build(cls, *, config_path: str | Path, broker: BrokerURL, db: Path | None, state: Path,
              secure_cookies: bool = False, client_id: str | None = None, device: Path | None = None,
              callers_dir: Path | None = None) -> Server:
        from hallq.controller import config as hall_config

        cfg = hall_config.load(config_path)
        if device is not None:  # the dashboard's own identity (a provisioning bundle of role dashboard)
            from hallq.shared.identity import load_identity

            ident = load_identity(device)
            if ident.role != "dashboard":
                raise ConfigError(f"{device}: the dashboard's identity has role {ident.role!r}, not 'dashboard'")
            if ident.hall != cfg.hall.id:
                raise ConfigError(f"{device}: the device belongs to hall {ident.hall!r}, not {cfg.hall.id!r}")
            broker, client_id = ident.broker, ident.device
        if callers_dir is None and device is not None and (Path(device).parent / IDENTITIES).is_dir():
            callers_dir = Path(device).parent / IDENTITIES  # the dashboard's bundle carries them
        callers_map = load_callers(callers_dir, cfg) if callers_dir is not None else None
        identities: dict[str, BrokerURL] = {}
        take = _take_client(cfg)
        if take is not None:
            found = load_take_identity(callers_dir, cfg) if callers_dir is not None else None
            if found is not None:
                identities[take] = found.broker
            elif broker.username is not None:
                raise ConfigError(
                    f"[follow] take_client = {take!r}: on a broker with logins the scan-to-take page logs in "
                    f"as that kiosk device, so the dashboard needs its bundle ({take}/device.toml in --callers "
                    f"DIR, or in {IDENTITIES}/ beside the dashboard's device.toml: `hallq provision bundle "
                    f"dashboard` puts it there when {take!r} is a kiosk in [[devices]])")
        clock = clock_mod.from_env(cfg.hall.timezone)
        if db is not None and not Path(db).exists():
            raise ConfigError(f"{db}: the controller's record does not exist (start the controller first, "
                              "or leave out --db to serve without history)")
        client = HallClient(broker, cfg.hall.id, client_id or "dashboard")
        live = LiveHall(client, clock.now)
        accounts = Accounts(state)
        callers = Callers(cfg.hall.id, lambda n: caller_identity(cfg, broker, n, callers_map))
        history = None
        if db is not None:
            from .history import History

            history = History(Path(db), cfg, clock)
        dash = Dashboard(hall=cfg, live=live, accounts=accounts, callers=callers, clock=clock,
                         rules=alerts.Rules.of(cfg.alerts), broker=broker, db_path=db,
                         secure_cookies=secure_cookies, history=history, identities=identities)
        app = create_app(dash)
        shipper = notes_shipper(cfg, state)
        live.start()
        client.start()
        if shipper is not None:
            shipper.start()
        return cls(app, dash, accounts, client, callers, shipper)

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
        if self.shipper is not None:
            self.shipper.stop()
        self.callers.stop()
        self.client.stop()
        self.accounts.close()
