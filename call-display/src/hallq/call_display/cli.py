"""``hallq display``: the hall screen, a window screen (with its caller), and the voice tools.

    hallq display --config display.toml --mode hall
    hallq display --config display.toml --mode window --window 3      # with [caller]: the window's caller too
    hallq display --config display.toml --headless --screenshot /tmp/hall.png
    hallq display voice-pack --out /var/lib/hallq/voice
    hallq display announce A023 3 --out call.wav
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import click
import msgspec
from hallq.shared.config import ConfigError
from hallq.shared.identity import DEVICE_HELP, for_app

from .config import DisplayConfig, load


@click.group("display", invoke_without_command=True)
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="display.toml")
@click.option("--device", "device_path", type=click.Path(dir_okay=False), help=DEVICE_HELP)
@click.option("--mode", type=click.Choice(["hall", "window"]), help="Overrides display.mode.")
@click.option("--window", type=click.IntRange(1, 999), help="The window number (window mode).")
@click.option("--broker", help="Overrides display.broker (mqtt://host:port).")
@click.option("--headless", is_flag=True, help="No screen: SDL's dummy drivers (with --screenshot).")
@click.option("--fullscreen", is_flag=True, help="Fullscreen (a Pi: KMSDRM).")
@click.option("--size", help="WIDTHxHEIGHT, e.g. 1080x1920 for a portrait screen.")
@click.option("--screenshot", type=click.Path(dir_okay=False), help="Save the picture here (PNG) and exit.")
@click.option("--screenshot-every", type=float, help="Keep running; save --screenshot this often (seconds).")
@click.option("--wait", type=float, default=10.0, show_default=True, help="How long --screenshot waits.")
@click.option("--trace", type=click.Path(dir_okay=False), help="Write call/frame/announce times (JSON lines).")
@click.pass_context
def command(ctx: click.Context, config_path: str | None, device_path: str | None, mode: str | None,
            window: int | None, broker: str | None, headless: bool, fullscreen: bool, size: str | None,
            screenshot: str | None, screenshot_every: float | None, wait: float, trace: str | None) -> None:
    """Run a call display: the hall screen (大厅综合屏) or a window screen (窗口屏) and its caller."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        ident, config_path = for_app(device_path, config_path, "display", "window")
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if not config_path:
        raise click.UsageError("--config display.toml is needed (see call-display/examples/display.toml)")
    try:
        cfg = load(config_path)
        if ident is not None:  # who the display is comes from its identity, not from display.toml
            cfg = _as_identity(cfg, ident.device, ident.hall)
        cfg = _override(cfg, mode=mode, window=window, broker=broker, headless=headless, fullscreen=fullscreen,
                        size=size)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if screenshot_every and not screenshot:
        raise click.UsageError("--screenshot-every needs --screenshot FILE")
    import serial
    from hallq.shared.gpio import NoGpio
    from hallq.shared.screen import FontNotFound, ScreenUnavailable

    from .app import DisplayApp, Options
    from .voice import PackError

    opts = Options(screenshot=Path(screenshot) if screenshot else None, screenshot_every=screenshot_every,
                   wait=wait, trace=Path(trace) if trace else None,
                   broker=ident.broker if ident is not None and not broker else None)
    try:
        code = DisplayApp(cfg, opts).run()
    except (serial.SerialException, PackError, FontNotFound, NoGpio, ScreenUnavailable) as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:  # a GPIO chip, an input device or a file that is not there
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
    ctx.exit(code)


def _as_identity(cfg: DisplayConfig, device: str, hall: str) -> DisplayConfig:
    d = msgspec.structs.replace(cfg.display, client_id=device, hall=hall)
    caller = msgspec.structs.replace(cfg.caller, device_id=device) if cfg.caller is not None else None
    return msgspec.structs.replace(cfg, display=d, caller=caller)


def _override(cfg: DisplayConfig, *, mode: str | None, window: int | None, broker: str | None, headless: bool,
              fullscreen: bool, size: str | None) -> DisplayConfig:
    raw = msgspec.to_builtins(cfg)
    d = raw["display"]
    if mode:
        d["mode"] = mode
    if window:
        d["window"] = window
    if broker:
        d["broker"] = broker
    if headless and fullscreen:
        raise ConfigError("--headless and --fullscreen exclude each other")
    if headless:
        d["screen"] = "headless"
    if fullscreen:
        d["screen"] = "fullscreen"
    if size:
        try:
            w, h = (int(x) for x in size.lower().split("x"))
        except ValueError:
            raise ConfigError(f"--size {size!r}: expected WIDTHxHEIGHT") from None
        d["size"] = [w, h]
    from hallq.shared.config import parse_config

    return parse_config(raw, DisplayConfig, source="command line")


@command.command("voice-pack")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="The folder to make.")
@click.option("--lang", "languages", default="zh,en", show_default=True, help="Languages: zh, en or both.")
@click.option("--speed", default=140, show_default=True, help="espeak-ng words per minute.")
def voice_pack(out: str, languages: str, speed: int) -> None:
    """Make a clip pack (a folder of WAV files) offline with espeak-ng."""
    from .voice import PackError, make_pack

    langs = _langs(languages)
    try:
        folder = make_pack(out, languages=langs, speed=speed)
    except PackError as exc:
        raise click.ClickException(str(exc)) from None
    n = len(list(folder.rglob("*.wav")))
    click.echo(f"{folder}: {n} clips")


@command.command("announce")
@click.argument("ticket")
@click.argument("window", type=click.IntRange(1, 999))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The WAV file to write.")
@click.option("--pack", type=click.Path(file_okay=False), help="A clip pack (made with espeak-ng if left out).")
@click.option("--lang", "languages", default="zh,en", show_default=True)
@click.option("--repeats", default=1, show_default=True, type=click.IntRange(1, 5))
@click.option("--recall", default=0, show_default=True, type=click.IntRange(0, 99))
def announce(ticket: str, window: int, out: str, pack: str | None, languages: str, repeats: int, recall: int) -> None:
    """Render one announcement (「请 A023 号到 3 号窗口办理」) to a WAV file."""
    import tempfile

    from hallq.shared.schemas import Call, PayloadError, decode, encode

    from .voice import ClipPack, PackError, make_pack, render_wav

    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")  # only a file is written
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    langs = _langs(languages)
    try:
        call = decode(encode({"ticket": ticket.upper(), "category": ticket.upper()[:-3] or "A", "window": window,
                              "window_name": f"{window}号窗口", "recall": recall,
                              "at": datetime.now().astimezone().isoformat()}), Call)
    except PayloadError as exc:
        raise click.ClickException(f"{ticket!r} / {window}: {exc}") from None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(pack) if pack else make_pack(Path(tmp) / "pack", languages=langs)
            path = render_wav(call, ClipPack(folder, langs), out, languages=langs, repeats=repeats)
    except PackError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{path}")


def _langs(text: str) -> tuple[str, ...]:
    langs = tuple(x.strip() for x in text.split(",") if x.strip())
    bad = [x for x in langs if x not in ("zh", "en")]
    if bad or not langs:
        raise click.BadParameter(f"languages are zh and en, not {', '.join(bad) or 'nothing'}", param_hint="--lang")
    return langs
