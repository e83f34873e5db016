"""A Pi pad process for the power-loss tests: the real PadApp on gpiozero's MockFactory (the config says
``pin_factory = "mock"``), its buttons pressed through standard input (``press N``), every effect printed
to standard output as a JSON line. Usage: python padproc.py PAD_TOML BROKER_URL"""

from __future__ import annotations

import json
import sys
import threading
import time

from hallq.rating_pad.app import PadApp
from hallq.rating_pad.config import load


def main() -> None:
    cfg = load(sys.argv[1])
    app = PadApp(cfg, broker=sys.argv[2])
    factory = app.gpio.factory
    original = app._apply

    def apply(effect: list) -> None:
        original(effect)
        print(json.dumps(effect, ensure_ascii=False), flush=True)

    app._apply = apply

    def commands() -> None:
        for line in sys.stdin:
            cmd, _, arg = line.strip().partition(" ")
            if cmd == "press":
                pin = factory.pin(cfg.gpio.buttons[int(arg)])
                pin.drive_low()
                time.sleep(0.03)
                pin.drive_high()

    threading.Thread(target=commands, daemon=True).start()
    app.start()
    print(json.dumps(["started"]), flush=True)
    app.run()


if __name__ == "__main__":
    main()
