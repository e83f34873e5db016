"""Test double of MicroPython's ``machine`` for running picopad under CPython: pins whose level the test
sets, PWM outputs that keep their duty."""

PINS = {}
PWMS = {}


class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 1

    def __init__(self, no, mode=None, pull=None):
        self.no = no
        self.level = 1 if pull == Pin.PULL_UP else 0
        self.reads = 0  # how often the firmware polled it
        PINS[no] = self

    def value(self):
        self.reads += 1
        return self.level


class PWM:
    def __init__(self, pin):
        self.pin = pin
        self.duty = 0
        self.hz = None
        PWMS[pin.no] = self

    def freq(self, hz):
        self.hz = hz

    def duty_u16(self, duty):
        self.duty = duty


def unique_id():
    return b"\x01\x02\x03\x04\x05\x06\x07\x08"
