"""gpiozero's pin factory for a device's buttons and LEDs, with one clear error where there is no GPIO.

gpiozero imports only here and only when asked (the pad and the window caller depend on it; the shared
package does not). Left to itself, gpiozero tries four pin libraries in turn, warns about each one that
fails (``PinFactoryFallback``), then raises ``BadPinFactory``, and a half-built device complains again from
its ``__del__``. :func:`pin_factory` picks the factory before any device is built and turns that into one
:class:`NoGpio` that says what is wrong and what to set instead.
"""

from __future__ import annotations

import warnings
from typing import Any


class NoGpio(RuntimeError):
    """This machine's GPIO cannot be opened."""


def pin_factory(kind: str, *, what: str = "GPIO", mock_hint: str = 'pin_factory = "mock"') -> Any:
    """The pin factory ``kind`` names: ``"mock"`` (gpiozero's ``MockFactory`` with PWM-capable pins) or
    ``"native"`` (the Pi's own: lgpio, RPi.GPIO, pigpio or gpiozero's native, the first that works).

    Raises :class:`NoGpio` naming the reason when no native factory can be loaded."""
    if kind == "mock":
        from gpiozero.pins.mock import MockFactory, MockPWMPin

        return MockFactory(pin_class=MockPWMPin)
    if kind != "native":
        raise ValueError(f"unknown pin factory {kind!r} (native or mock)")
    from gpiozero import Device
    from gpiozero.exc import BadPinFactory, PinFactoryFallback

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PinFactoryFallback)
        try:
            Device.ensure_pin_factory()  # once per process; GPIOZERO_PIN_FACTORY names one explicitly
        except (BadPinFactory, ImportError) as exc:
            reasons = [str(w.message) for w in caught if issubclass(w.category, PinFactoryFallback)]
            # The last fallback is gpiozero's own native driver: its reason says why this is not a Pi.
            why = reasons[-1].removeprefix("Falling back from native: ") if reasons else str(exc)
            raise NoGpio(f"cannot open the {what}: this machine has no Raspberry Pi GPIO ({why}); "
                         f"on a desk without buttons set {mock_hint}") from None
    return Device.pin_factory
