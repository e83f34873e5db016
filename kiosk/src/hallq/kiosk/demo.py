"""The kiosk in ``make demo``: one kiosk, in a window when there is a screen, headless with screenshots
in the demo's output folder otherwise. Its printer writes the ESC/POS bytes to a file there."""

from __future__ import annotations

import sys

from hallq.shared.demo import DemoContext, DemoProcess

DEVICE = "kiosk-1"


def config_text(ctx: DemoContext) -> str:
    out = ctx.out_dir
    mode = "headless" if ctx.headless else "window"
    return (
        "[kiosk]\n"
        f'id = "{DEVICE}"\n'
        f'hall = "{ctx.hall}"\n'
        f'broker = "{ctx.broker}"\n'
        f'secret_key_file = "{ctx.secret_file}"\n'
        'qr_url = "https://hall.example.gov.cn/q?hall={hall}&n={number}"\n'
        "\n[screen]\n"
        "width = 1920\nheight = 1080\n"
        f'mode = "{mode}"\n'
        "\n[printer]\n"
        f'url = "file:{out / (DEVICE + "-printer.bin")}"\n'
    )


def participants(ctx: DemoContext) -> list[DemoProcess]:
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    cfg = ctx.out_dir / f"{DEVICE}.toml"
    cfg.write_text(config_text(ctx), encoding="utf-8")
    argv = [sys.executable, "-m", "hallq.shared.cli", "kiosk", "--config", str(cfg), *ctx.device_args(DEVICE)]
    if ctx.headless:
        # nobody can touch a headless kiosk: it touches a category itself now and then, so the screenshots
        # show the whole flow (its tickets are called like the simulated ones)
        argv += ["--headless", "--screenshot", str(ctx.out_dir / DEVICE), "--auto-tap", "15"]
    return [DemoProcess(name=DEVICE, argv=argv)]
