"""The ``hallq`` command. Its subcommands come from the installed members (entry point group
``hallq.commands``), so ``hallq --help`` on a kiosk image lists only what the kiosk has."""

from __future__ import annotations

import logging
import os
import sys
import time
from importlib.metadata import entry_points

import click

GROUP = "hallq.commands"


class RoleGroup(click.Group):
    """A click group whose commands are the installed roles' entry points, loaded when used."""

    def _entry_points(self) -> dict[str, object]:
        return {ep.name: ep for ep in entry_points(group=GROUP)}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._entry_points()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = super().get_command(ctx, name)
        if cmd is not None:
            return cmd
        ep = self._entry_points().get(name)
        if ep is None:
            return None
        try:
            loaded = ep.load()  # type: ignore[attr-defined]
        except Exception as exc:  # a broken install must not take `hallq --help` down with it
            return _broken(name, f"{type(exc).__name__}: {exc}")
        if not isinstance(loaded, click.Command):
            return _broken(name, "its entry point is not a click command")
        return loaded


def _broken(name: str, why: str) -> click.Command:
    def fail() -> None:
        raise click.ClickException(f"the {name!r} role is installed but cannot load ({why})")

    return click.Command(name, callback=fail, help=f"(cannot load: {why})")


@click.group(cls=RoleGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="info",
    show_default=True,
    envvar="HALLQ_LOG_LEVEL",
    help="How much to log (to standard error).",
)
@click.version_option(package_name="hallq-shared", prog_name="hallq")
def main(log_level: str) -> None:
    """hallq: queue, calling and rating for government service halls.

    Each device role is a subcommand; a device image installs only its own role.
    """
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # pygame's greeting is not a log line
    logging.basicConfig(
        level=getattr(logging, log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(BoundedLog())


class BoundedLog(logging.Filter):
    """Keeps a log readable under a flood of bad input: a line is at most :attr:`MAX_LINE` characters, and a
    warning from the same place (logger and message template) comes at most once per :attr:`EVERY` seconds;
    the next one that comes through says how many were held back."""

    MAX_LINE = 1000
    EVERY = 60.0

    def __init__(self) -> None:
        super().__init__()
        self._last: dict[tuple[str, str], list[float]] = {}  # key -> [when last let through, held back]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING:
            key = (record.name, str(record.msg)[:200])
            now = time.monotonic()
            seen = self._last.get(key)
            if seen is not None and now - seen[0] < self.EVERY:
                seen[1] += 1
                return False
            held = int(seen[1]) if seen is not None else 0
            self._last[key] = [now, 0]
            if len(self._last) > 1000:  # forget the oldest places
                for k in sorted(self._last, key=lambda k: self._last[k][0])[:500]:
                    del self._last[k]
            if held:
                record.msg = f"{record.msg} ({held} more like this in the last {self.EVERY:g} s not logged)"
        text = record.getMessage()
        if len(text) > self.MAX_LINE or (record.exc_info is None and "\n" in text):
            record.msg = text[: self.MAX_LINE].replace("\n", " ") + (
                f"…(+{len(text) - self.MAX_LINE})" if len(text) > self.MAX_LINE else "")
            record.args = None
        return True


@main.command("protocol-doc")
@click.option("--out", type=click.Path(dir_okay=False), help="Write here instead of standard output.")
def protocol_doc(out: str | None) -> None:
    """Print the hall contract (topics, schemas, examples) as Markdown."""
    from .protocol_doc import render

    text = render()
    if out:
        with open(out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        click.echo(text, nl=False)


@main.command("not-provisioned")
@click.option("--role", required=True, type=click.Choice(["controller", "kiosk", "display", "pad"]))
@click.option("--device", "device_file", type=click.Path(dir_okay=False), envvar="HALLQ_DEVICE",
              default="/etc/hallq/device.toml", show_default=True, help="The bundle's device.toml to wait for.")
@click.option("--headless", is_flag=True, help="SDL's dummy drivers (tests), with --screenshot.")
@click.option("--screenshot", type=click.Path(dir_okay=False), help="Save the first frame here (PNG).")
@click.option("--blink", "blink_pins", help="LED pins to blink (a pad), comma-separated gpiozero names.")
def not_provisioned(role: str, device_file: str, headless: bool, screenshot: str | None, blink_pins: str | None) -> None:
    """What a device image shows until it is provisioned: 未配置 Not provisioned, its serial number; waits."""
    import signal
    import threading
    from pathlib import Path

    from .unprovisioned import run

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    sys.exit(run(role, device_file=Path(device_file), screen=role != "controller",
                 mode="headless" if headless else "fullscreen", stop=stop,
                 blink_pins=tuple(p for p in (blink_pins or "").split(",") if p),
                 screenshot=Path(screenshot) if screenshot else None))


if __name__ == "__main__":
    main()
