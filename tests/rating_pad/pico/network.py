"""Test double of MicroPython's ``network``: a station interface that is connected once activated."""

STA_IF = 0


class WLAN:
    def __init__(self, interface):
        self._active = False
        self._connected = False

    def active(self, on=None):
        if on is not None:
            self._active = on
        return self._active

    def connect(self, ssid, password):
        self._connected = self._active

    def isconnected(self):
        return self._connected
