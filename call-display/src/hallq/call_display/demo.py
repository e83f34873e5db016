"""The call displays in ``make demo``: the hall screen and the screen of one window.

With a screen they open as desktop windows; without one they run headless and keep a screenshot of each
fresh in the demo's output folder (``display-hall.png``, ``display-window-N.png``). When the demo has a
sound device the hall screen speaks each call, from a clip pack made once with espeak-ng in the output
folder. The simulated clerks keep operating the window (no caller here), so nothing is ``replaced``.
"""

from __future__ import annotations

import shutil
import sys

from hallq.shared.demo import DemoContext, DemoProcess


def config_text(ctx: DemoContext, mode: str, window: int) -> str:
    headless = ctx.headless
    if mode == "hall":
        size = "[1920, 1080]" if headless else "[1280, 720]"
    else:
        size = "[1280, 720]" if headless else "[800, 450]"
    text = (
        "# Written by the demo.\n"
        "[display]\n"
        f'hall = "{ctx.hall}"\n'
        f'broker = "{ctx.broker}"\n'
        f'mode = "{mode}"\n'
        f"window = {window}\n"
        f'screen = "{"headless" if headless else "window"}"\n'
        f"size = {size}\n"
        f"fps = {5 if headless else 20}\n"
        "flash_seconds = 4.0\n"
    )
    if mode == "hall" and ctx.sound and shutil.which("espeak-ng"):
        text += (
            "\n[voice]\n"
            'backend = "clips"\n'
            f'pack = "{ctx.out_dir / "voice-pack"}"\n'
            "make_if_missing = true\n"
            'languages = ["zh"]\n'
        )
    return text


def participants(ctx: DemoContext) -> list[DemoProcess]:
    if not ctx.windows:
        return []
    window = ctx.windows[0]
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    out: list[DemoProcess] = []
    for mode, name in (("hall", "display-hall"), ("window", f"display-window-{window}")):
        cfg = ctx.out_dir / f"{name}.toml"
        cfg.write_text(config_text(ctx, mode, window), encoding="utf-8")
        argv = [sys.executable, "-m", "hallq.shared.cli", "display", "--config", str(cfg), *ctx.device_args(name)]
        if ctx.headless:
            argv += ["--screenshot", str(ctx.out_dir / f"{name}.png"), "--screenshot-every", "2"]
        out.append(DemoProcess(name=name, argv=argv))
    return out
