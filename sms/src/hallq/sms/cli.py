"""``hallq sms``: the SMS gateway, and the technicians' modem check."""

from __future__ import annotations

import logging
import signal
import threading

import click
from hallq.shared.config import ConfigError

log = logging.getLogger(__name__)


@click.group(invoke_without_command=True)
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="The gateway's sms.toml.")
@click.option("--broker", help="Broker URL, instead of sms.broker in the config.")
@click.option("--port", help="The modem's port (or a pyserial URL), instead of modem.port in the config.")
@click.pass_context
def command(ctx: click.Context, config_path: str | None, broker: str | None, port: str | None) -> None:
    """The SMS gateway: take and follow numbers by text through a GSM/4G modem."""
    if ctx.invoked_subcommand is not None:
        return
    if not config_path:
        raise click.UsageError("--config sms.toml is needed")
    from hallq.shared import clock as clocks
    from hallq.shared.hallkey import HallKeyError

    from .app import SmsGateway
    from .config import load

    try:
        cfg = load(config_path)
        gw = SmsGateway(cfg, clocks.from_env(cfg.sms.timezone), broker=broker, port=port)
    except (ConfigError, HallKeyError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None

    stopping = threading.Event()

    def on_term(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    gw.start()
    log.info("SMS gateway %s of hall %s: modem %s", cfg.sms.id, cfg.sms.hall, port or cfg.modem.port)
    stopping.wait()
    gw.stop()


@command.command("test-modem")
@click.option("--port", required=True, help="The modem's AT port, e.g. /dev/ttyUSB2 (or a pyserial URL).")
@click.option("--baudrate", type=int, default=115200, show_default=True)
def test_modem(port: str, baudrate: int) -> None:
    """Ask the modem for its SIM, network registration, signal and stored texts; change nothing."""
    from . import at
    from .modem import AtModem, CommandError, ModemError

    m = AtModem(port, baudrate=baudrate, timeout=5)
    try:
        m.open()
        m.command("AT")
        m.command("ATE0")
        m.command("AT+CMEE=1")
        try:
            sim = at.cpin(m.command("AT+CPIN?", answer=("+CPIN:",))[0])
        except CommandError as exc:
            sim = f"error ({exc})"
        click.echo(f"modem {port}: answers AT commands")
        click.echo(f"SIM:          {sim}")
        if sim == "ready":
            reg = at.creg(m.command("AT+CREG?", answer=("+CREG:",))[0])
            dbm = at.csq_dbm(m.command("AT+CSQ", answer=("+CSQ:",))[0])
            click.echo(f"registration: {reg}")
            click.echo(f"signal:       {'unknown' if dbm is None else f'{dbm} dBm'}")
            m.command("AT+CMGF=0")
            stored = at.cmgl(m.command("AT+CMGL=4", answer=("+CMGL:",), pdu_lines=True, timeout=30))
            click.echo(f"stored texts: {len(stored)}")
    except (ModemError, at.AtParseError, IndexError) as exc:
        raise click.ClickException(f"modem {port}: {exc}") from None
    finally:
        m.close()
