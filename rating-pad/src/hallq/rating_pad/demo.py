"""The rating pad in ``make demo``: a Pi pad at window 1 on gpiozero's MockFactory (set explicitly in its
generated config), with a window of five clickable buttons when the demo has a screen; headless, it draws
on SDL's dummy driver and saves a picture of each new screen in ``{out}/pad/screens``. The simulated
citizens at window 1 rate on it: the demo tells it which button each will press (``--demo-presses``) and it
drives that mock pin when it invites the rating, so the buttons, journal, upload and thank-you all run."""

from __future__ import annotations

import sys

from hallq.shared.demo import DemoContext, DemoProcess


def config_text(ctx: DemoContext, window: int) -> str:
    journal = ctx.out_dir / "pad" / f"ratings-{window}.jsonl"
    text = (
        "# Written by the demo: a rating pad without buttons (gpiozero's MockFactory).\n"
        "[pad]\n"
        f'hall = "{ctx.hall}"\n'
        f"window = {window}\n"
        f'broker = "{ctx.broker}"\n'
        f'journal = "{journal}"\n'
        "\n[gpio]\n"
        'pin_factory = "mock"\n'
    )
    if ctx.headless:
        shots = ctx.out_dir / "pad" / "screens"
        text += f'\n[screen]\nmode = "headless"\nsize = [800, 480]\ntouch = false\nscreenshot_dir = "{shots}"\n'
    else:
        text += '\n[screen]\nmode = "window"\nsize = [800, 480]\ntouch = true\n'
    return text


def participants(ctx: DemoContext) -> list[DemoProcess]:
    if not ctx.windows:
        return []
    window = 1 if 1 in ctx.windows else ctx.windows[0]
    folder = ctx.out_dir / "pad"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"pad-{window}.toml"
    path.write_text(config_text(ctx, window), encoding="utf-8")
    argv = [sys.executable, "-m", "hallq.shared.cli", "pad", "--config", str(path), *ctx.device_args(f"pad-{window}")]
    # the simulated citizen served at this window presses its button through the mock GPIO ("press:N"); the
    # secure demo's ACL lets that window's simulated clerk say so (hallq.demo.secure.demo_acl)
    return [DemoProcess(name=f"pad-{window}", argv=[*argv, "--demo-presses"],
                        replaces=(f"pad:{window}", f"press:{window}"))]
