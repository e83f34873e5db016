"""``hallq kiosk``: the ticket kiosk, and the technicians' printer and reader tools."""

from __future__ import annotations

import logging
import signal
import sys
import time
from datetime import date, datetime

import click
from hallq.shared.config import ConfigError
from hallq.shared.identity import DEVICE_HELP, for_app

log = logging.getLogger(__name__)


@click.group(invoke_without_command=True)
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="The kiosk's kiosk.toml.")
@click.option("--device", "device_path", type=click.Path(dir_okay=False), help=DEVICE_HELP)
@click.option("--headless", is_flag=True, help="No screen: SDL's dummy drivers (tests, the demo without a screen).")
@click.option("--window", is_flag=True, help="A window instead of the configured mode (a desk).")
@click.option("--screenshot", "screenshot_dir", type=click.Path(file_okay=False),
              help="Save a PNG here whenever the screen changes.")
@click.option("--broker", help="Broker URL, instead of kiosk.broker in the config.")
@click.option("--printer", "printer_url", metavar="URL", help="Printer URL, instead of printer.url in the config.")
@click.option("--auto-tap", type=float, metavar="SECONDS",
              help="Demo only: touch the next category every SECONDS on the home screen (a headless kiosk's visitors).")
@click.pass_context
def command(ctx: click.Context, config_path: str | None, device_path: str | None, headless: bool, window: bool,
            screenshot_dir: str | None, broker: str | None, printer_url: str | None, auto_tap: float | None) -> None:
    """The ticket kiosk: touch screen, ID card readers, thermal tickets, appointments."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        ident, config_path = for_app(device_path, config_path, "kiosk")
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if not config_path:
        raise click.UsageError("--config kiosk.toml is needed")
    import msgspec

    from .app import KioskApp
    from .config import load

    try:
        cfg = load(config_path)
        if ident is not None:  # who the kiosk is comes from its identity, not from kiosk.toml
            cfg = msgspec.structs.replace(cfg, kiosk=msgspec.structs.replace(
                cfg.kiosk, id=ident.device, hall=ident.hall, secret_key_file=str(ident.kiosk_key_file)))
        if printer_url:
            from .config import check

            cfg = check(msgspec.structs.replace(cfg, printer=msgspec.structs.replace(cfg.printer, url=printer_url)),
                        "--printer")
        mode = "headless" if headless else ("window" if window else None)
        app = KioskApp(cfg, mode=mode, screenshot_dir=screenshot_dir, broker=broker or (ident and ident.broker),
                       auto_tap=auto_tap)
    except (ConfigError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None

    def on_term(signum: int, frame: object) -> None:
        app.stopping.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    try:
        app.run()
    except Exception as exc:
        from hallq.shared.screen import FontNotFound, ScreenUnavailable

        if isinstance(exc, FontNotFound | ScreenUnavailable):
            raise click.ClickException(str(exc)) from None
        raise


@command.command("staff-pin")
@click.option("--file", "path", required=True, type=click.Path(dir_okay=False),
              help="The kiosk's staff PIN file ([staff] pins_file in kiosk.toml); made 0600 if new.")
@click.option("--staff", "staff", required=True, help="The floor guide's staff id (工号).")
def staff_pin(path: str, staff: str) -> None:
    """Add (or replace) a floor guide's PIN for confirming priorities at the kiosk (asked twice, never echoed)."""
    import os
    from pathlib import Path

    from .staff import line_for

    pin = click.prompt("PIN (4-8 digits)", hide_input=True, confirmation_prompt=True)
    try:
        line = line_for(staff, pin)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    p = Path(path)
    kept = [ln for ln in (p.read_text(encoding="utf-8").splitlines() if p.exists() else [])
            if ln.strip() and not ln.startswith(f"{staff}:")]
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join([*kept, line]) + "\n")
    click.echo(f"{p}: PIN of {staff} set ({len(kept) + 1} staff)")


@command.command("test-print")
@click.option("--printer", "url", required=True, help="usb:VID:PID, serial:/dev/ttyUSB0?baudrate=9600, tcp:HOST:9100, file:PATH")
@click.option("--chinese", type=click.Choice(["raster", "gb18030"]), default="raster", show_default=True)
@click.option("--width", type=int, default=576, show_default=True, help="Dots per line: 576 (80 mm), 384 (58 mm).")
@click.option("--font", help="A CJK font file (the installed Noto Sans CJK otherwise).")
def test_print(url: str, chinese: str, width: int, font: str | None) -> None:
    """Print a sample ticket, after reporting the printer's status."""
    from .printer import PrinterError, TicketPrinter, TicketText

    try:
        p = TicketPrinter(url, chinese=chinese, width=width, font_path=font)  # type: ignore[arg-type]
        st = p.status()
    except PrinterError as exc:
        raise click.ClickException(str(exc)) from None
    online = {True: "online", False: "offline", None: "unknown (the transport cannot answer)"}[st.online]
    click.echo(f"printer {url}: {online}; paper {st.paper}")
    sample = TicketText(
        hall_name="示范政务服务中心", number="A001", category_name="社保医保", ahead=3, est_wait_min=12, est_range=(10, 20),
        issued_at=datetime.now().astimezone(), qr="https://example.gov.cn/q?n=A001", masked_id="110***********1234",
        footer="过号请重新取号 · 测试小票 test ticket",
    )
    try:
        p.print_ticket(sample)
    except PrinterError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        p.close()
    click.echo("sample ticket sent")


@command.command("test-reader")
@click.option("--id-reader", "url", required=True,
              help="serial:/dev/ttyUSB0?baudrate=115200 (GA 467) or evdev:/dev/input/by-id/...")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds to wait for a card.")
def test_reader(url: str, timeout: float) -> None:
    """Wait for one card; print the masked number, the birth date and whether the check digit is valid."""
    from .idcard import inspect_number

    kind, _, rest = url.partition(":")
    raw: list[str] = []
    if kind == "serial":
        from .ga467 import Ga467Error, Ga467Reader, Ga467StatusError, parse_raw_fields

        try:
            reader = Ga467Reader.open(url)
        except (Ga467Error, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
        try:
            reader.reset()
            click.echo(f"{reader.name}: ready; put a card on the reader")
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and not raw:
                if reader.find_card() and reader.select_card():
                    r = reader.transact((0x30, 0x01))
                    if r.status != 0x90:
                        raise Ga467StatusError((0x30, 0x01), r.status)
                    raw.append(parse_raw_fields(r.data)["id_number"])
                else:
                    time.sleep(0.2)
        except Ga467Error as exc:
            raise click.ClickException(f"{reader.name}: {exc}") from None
        finally:
            reader.close()
    elif kind == "evdev":
        from .wedge import WedgeReader

        w = WedgeReader(rest, lambda n, p: None, lambda o, d: None)
        try:
            w.open()
            click.echo(f"{rest}: grabbed; swipe a card")
            entry = w.wait_entry(timeout)
        except OSError as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            w.stop()
        if entry is not None:
            raw.append(entry)
    else:
        raise click.ClickException("--id-reader: expected serial:DEVICE?baudrate=N or evdev:/dev/input/...")
    if not raw:
        raise click.ClickException(f"no card within {timeout:g} s")
    info = inspect_number(raw[0], date.today())
    raw.clear()
    click.echo(f"number:      {info.masked}")
    click.echo(f"birth date:  {info.birth_date.isoformat() if info.birth_date else 'not a real date'}")
    click.echo(f"check digit: {'valid' if info.check_ok else 'WRONG'}")
    if info.problem:
        click.echo(f"this card cannot be used: {info.problem}")
        sys.exit(1)
    click.echo("this card can be used")
