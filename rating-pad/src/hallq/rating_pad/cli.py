"""``hallq pad --config pad.toml``: run a Raspberry Pi rating pad."""

from __future__ import annotations

import signal
import sys

import click
from hallq.shared.config import ConfigError

from .config import load
from .hardware import NoGpio


@click.command("pad")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="The pad's TOML config (see rating-pad/examples/pad.toml).")
@click.option("--broker", help="Broker URL (mqtt://host:port); overrides [pad] broker.")
def command(config_path: str, broker: str | None) -> None:
    """The five-level rating pad at a window: five buttons, five LEDs, an optional small screen."""
    from .app import PadApp

    try:
        cfg = load(config_path)
        app = PadApp(cfg, broker=broker)
    except (ConfigError, NoGpio) as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:  # the journal cannot be opened or created
        raise click.ClickException(f"cannot open the ratings journal: {exc}") from None

    def stop(signum: int, frame: object) -> None:
        app.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    from hallq.shared.screen import FontNotFound, ScreenUnavailable

    app.start()
    try:
        app.run()
    except (ScreenUnavailable, FontNotFound) as exc:
        raise click.ClickException(f"the pad's screen: {exc}") from None
    finally:
        app.stop()
    sys.exit(0)
