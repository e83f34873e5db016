"""``hallq pad --config pad.toml``: run a Raspberry Pi rating pad."""

from __future__ import annotations

import signal
import sys

import click
from hallq.shared.config import ConfigError
from hallq.shared.identity import DEVICE_HELP, for_app

from .config import load
from .hardware import NoGpio


@click.command("pad")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="The pad's TOML config (see rating-pad/examples/pad.toml).")
@click.option("--device", "device_path", type=click.Path(dir_okay=False), help=DEVICE_HELP)
@click.option("--broker", help="Broker URL (mqtt://host:port); overrides [pad] broker.")
@click.option("--headless", is_flag=True,
              help="No screen: the pad's [screen] (if any) draws on SDL's dummy drivers (tests, a desk without a "
                   "display); with [screen] screenshot_dir it still saves a picture of each new screen.")
@click.option("--demo-presses", is_flag=True,
              help='Demo only: press the mock buttons (pin_factory = "mock") as `hallq demo`\'s simulated citizens '
                   "choose (hallq/{hall}/demo/pad/{window}/press).")
def command(config_path: str | None, device_path: str | None, broker: str | None, headless: bool,
            demo_presses: bool) -> None:
    """The five-level rating pad at a window: five buttons, five LEDs, an optional small screen."""
    import msgspec

    from .app import PadApp

    try:
        ident, config_path = for_app(device_path, config_path, "pad")
        if not config_path:
            raise click.UsageError("--config pad.toml is needed")
        cfg = load(config_path)
        if ident is not None:  # who the pad is comes from its identity, not from pad.toml
            cfg = msgspec.structs.replace(cfg, pad=msgspec.structs.replace(cfg.pad, client_id=ident.device,
                                                                           hall=ident.hall))
        if headless and cfg.screen is not None:  # asked for: no screen, so SDL's invisible driver is right
            cfg = msgspec.structs.replace(cfg, screen=msgspec.structs.replace(cfg.screen, mode="headless"))
        app = PadApp(cfg, broker=broker or (ident and ident.broker), demo_presses=demo_presses)
    except (ConfigError, NoGpio, ValueError) as exc:
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
