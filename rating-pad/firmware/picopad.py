"""The rating pad on a Raspberry Pi Pico W (MicroPython): five buttons, five LEDs, Wi-Fi, MQTT.

The pad's logic is padcore (shared with the Pi pad); this module is only its adapters: ``machine.Pin``
buttons polled every 10 ms, PWM LEDs, ``umqtt.simple`` for the broker, the ratings journal in flash
(padjournal), the network time from NTP. See README.md beside this file for what it promises.
"""

import binascii
import json
import os
import time

import machine
import network
import padcore
import padjournal
from umqtt.simple import MQTTClient

#: The firmware's version: hallq-rating-pad's (a test keeps them equal); sent in the pad's health message.
VERSION = "0.1.0"
CONFIG_FILE = "pad.json"
JOURNAL_FILE = "ratings.jsonl"
REQUIRED = ("ssid", "password", "broker", "hall", "client", "window", "buttons")
OPTIONAL = {
    "port": 1883,
    "user": None,
    "mqtt_password": None,
    "ca": None,  # the hall's CA (DER file on the board): TLS to the broker, as `hallq provision pico` writes it
    "leds": [],
    "utc_offset_min": 480,
    "invite_ms": 30000,
    "thanks_ms": 4000,
    "debounce_ms": 30,
}
RESEND_MS = 5000  # a rating not answered by then is published again, with the same req
#: No socket operation may wait longer than this (umqtt.simple sets no timeout of its own: a lost broker would
#: freeze the loop inside a read or a write, and no button would be polled).
SOCKET_TIMEOUT_S = 3
PING_MS = 10000
KEEPALIVE_S = 30
POLL_MS = 10
PULSE_MS = 1600


def load_config(path=CONFIG_FILE):
    """The pad's settings from ``pad.json``; a missing, unknown or mistyped key stops with its name."""
    with open(path) as f:
        cfg = json.load(f)
    if not isinstance(cfg, dict):
        raise ValueError(path + ": not a JSON object")
    for key in cfg:
        if key not in REQUIRED and key not in OPTIONAL:
            raise ValueError(path + ": unknown key " + key)
    for key in REQUIRED:
        if key not in cfg:
            raise ValueError(path + ": missing key " + key)
    for key in OPTIONAL:
        cfg.setdefault(key, OPTIONAL[key])
    if not isinstance(cfg["window"], int) or cfg["window"] < 1:
        raise ValueError(path + ": window must be a positive whole number")
    if not isinstance(cfg["buttons"], list) or len(cfg["buttons"]) != 5:
        raise ValueError(path + ": buttons must be five GPIO numbers, 非常满意 first")
    if not isinstance(cfg["leds"], list) or len(cfg["leds"]) not in (0, 5):
        raise ValueError(path + ": leds must be five GPIO numbers, or none")
    return cfg


def tls_context(ca_file):
    """TLS that trusts only the hall's CA and checks the broker's name (umqtt.simple's ``ssl``)."""
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED
    with open(ca_file, "rb") as f:
        ctx.load_verify_locations(cadata=f.read())
    return ctx


class Monotonic:
    """Milliseconds since start-up that never wrap (``ticks_ms`` does, after about 12 days)."""

    def __init__(self):
        self.ms = 0
        self.last = time.ticks_ms()

    def now(self):
        t = time.ticks_ms()
        self.ms += time.ticks_diff(t, self.last)
        self.last = t
        return self.ms


class PicoPad:
    def __init__(self, cfg):
        self.cfg = cfg
        self.clock = Monotonic()
        self.pins = [machine.Pin(p, machine.Pin.IN, machine.Pin.PULL_UP) for p in cfg["buttons"]]
        self.levels = [p.value() for p in self.pins]
        self.leds = []
        for p in cfg["leds"]:
            pwm = machine.PWM(machine.Pin(p))
            pwm.freq(1000)
            pwm.duty_u16(0)
            self.leds.append(pwm)
        settings = {"invite_ms": cfg["invite_ms"], "thanks_ms": cfg["thanks_ms"], "debounce_ms": cfg["debounce_ms"]}
        self.state = padcore.new_state(cfg["window"], settings)
        self.journal = padjournal.Journal(JOURNAL_FILE)
        root = "hallq/" + cfg["hall"]
        self.t_rate = root + "/req/" + cfg["client"] + "/rate"
        self.t_reply = root + "/reply/" + cfg["client"]
        self.t_window = root + "/window/" + str(cfg["window"]) + "/state"
        self.t_status = root + "/device/" + cfg["client"] + "/status"
        self.t_health = root + "/device/" + cfg["client"] + "/health"
        self.wlan = network.WLAN(network.STA_IF)
        self.mqtt = None
        self.synced = False
        self.answer = None
        self.sending = None
        self.sent_at = 0
        self.pinged_at = 0
        self.retry_at = 0
        self.backoff = 500
        self.led_mode = "off"
        self.led_one = None
        self.time_known = False
        self.running = True

    # -- the state machine ----------------------------------------------------------------------------
    def feed(self, event):
        self.state, effects = padcore.handle(self.state, event, self.clock.now())
        for effect in effects:
            self.apply(effect)

    def apply(self, effect):
        kind = effect[0]
        if kind == "leds":
            self.led_mode = effect[1]
            self.led_one = effect[2] if len(effect) > 2 else None
        elif kind == "rate":
            self.journal.add(effect[1], self.iso_now(), self.stamp())
        elif kind == "show":
            print("pad:", " / ".join(padcore.screen_text(effect)))
        elif kind == "ignored":
            print("pad:", effect[1], "(ignored)")
        elif kind == "error":
            print("pad: ignored:", effect[1])

    # -- time -------------------------------------------------------------------------------------------
    def iso_now(self):
        """The hall's local time in ISO 8601, or None while the pad does not know the time."""
        if not self.time_known:
            return None
        off = self.cfg["utc_offset_min"]
        t = time.gmtime(time.time() + off * 60)
        sign = "+" if off >= 0 else "-"
        off = abs(off)
        return f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}T{t[3]:02d}:{t[4]:02d}:{t[5]:02d}{sign}{off // 60:02d}:{off % 60:02d}"

    def stamp(self):
        if self.time_known:
            return str(time.time())
        return "b" + binascii.hexlify(os.urandom(4)).decode()  # no clock yet: a random boot mark

    def set_time(self):
        try:
            import ntptime

            ntptime.settime()
            self.time_known = True
        except (OSError, ImportError) as exc:
            print("pad: no network time:", exc)

    # -- network ----------------------------------------------------------------------------------------
    def connect(self):
        cfg = self.cfg
        if not self.wlan.isconnected():
            self.wlan.active(True)
            self.wlan.connect(cfg["ssid"], cfg["password"])
            deadline = self.clock.now() + 15000
            while not self.wlan.isconnected():
                if self.clock.now() > deadline:
                    raise OSError("Wi-Fi " + cfg["ssid"] + " not reached")
                self.poll()
                time.sleep_ms(POLL_MS)
        if not self.time_known:
            self.set_time()
        if cfg["ca"]:
            c = MQTTClient(cfg["client"], cfg["broker"], port=cfg["port"], user=cfg["user"],
                           password=cfg["mqtt_password"], keepalive=KEEPALIVE_S, ssl=tls_context(cfg["ca"]))
        else:
            c = MQTTClient(cfg["client"], cfg["broker"], port=cfg["port"], user=cfg["user"],
                           password=cfg["mqtt_password"], keepalive=KEEPALIVE_S)
        c.set_callback(self.on_message)
        c.set_last_will(self.t_status, "offline", retain=True, qos=1)
        try:
            c.connect(timeout=SOCKET_TIMEOUT_S)  # micropython-lib's umqtt.simple >= 1.4 bounds the connect
        except TypeError:
            c.connect()
        self.synced = False  # the first window state after subscribing is the retained snapshot
        c.subscribe(self.t_reply, qos=1)
        c.subscribe(self.t_window, qos=1)
        self.bound(c)
        c.publish(self.t_status, "online", retain=True, qos=0)
        c.publish(self.t_health, self.health(), retain=True, qos=0)
        self.mqtt = c
        self.sending = None
        self.pinged_at = self.clock.now()
        self.backoff = 500
        print("pad: connected to", cfg["broker"])

    def health(self):
        """The pad's health message (schemas.DeviceHealth): its role and firmware version, and whether it
        knows the time (a pad without NTP sends its ratings without the time of the press)."""
        now = self.iso_now()
        errors = [] if self.time_known else ["no network time: ratings carry the time they arrive"]
        if now is None:  # the message needs a time: the Unix epoch says "unknown" plainly
            now = "1970-01-01T00:00:00+00:00"
        return json.dumps({"at": now, "role": "pad", "version": VERSION, "errors": errors})

    def bound(self, c):
        """Give the socket its time-out again: umqtt.simple's check_msg() makes it blocking after each read."""
        try:
            c.sock.settimeout(SOCKET_TIMEOUT_S)
        except (AttributeError, OSError):
            pass

    def drop(self, why):
        print("pad: offline:", why)
        try:
            if self.mqtt is not None:
                self.mqtt.sock.close()
        except (OSError, AttributeError):
            pass
        self.mqtt = None
        self.retry_at = self.clock.now() + self.backoff
        self.backoff = min(self.backoff * 2, 30000)

    def on_message(self, topic, msg):
        topic = topic.decode()
        try:
            data = json.loads(msg)
        except ValueError:
            print("pad: not JSON on", topic)
            return
        if topic == self.t_window:
            kind = "state" if self.synced else "sync"
            self.synced = True
            self.feed([kind, data])
        elif topic == self.t_reply and isinstance(data, dict):
            self.answer = data

    def send_pending(self, now):
        if not self.journal.pending:
            return
        rec = self.journal.pending[0]
        ans = self.answer
        if ans is not None and ans.get("req") == rec["req"]:
            self.answer = None
            if ans.get("ok") is False:
                print("pad: the controller refused", rec["req"], ans.get("error"))
            self.journal.done(rec["req"])
            self.sending = None
            return
        if self.sending != rec["req"] or now - self.sent_at >= RESEND_MS:
            payload = {"req": rec["req"], "window": rec["window"], "ticket": rec["ticket"], "level": rec["level"]}
            if rec["at"]:
                payload["at"] = rec["at"]
            if rec.get("called_at"):
                payload["called_at"] = rec["called_at"]
            self.sending = rec["req"]
            self.sent_at = now
            # QoS 0: umqtt.simple waits for a QoS 1 PUBACK without end; the controller's answer is the
            # acknowledgement, and the same req goes out again every RESEND_MS until it comes
            self.bound(self.mqtt)
            self.mqtt.publish(self.t_rate, json.dumps(payload), qos=0)

    # -- buttons and LEDs -------------------------------------------------------------------------------
    def poll(self):
        for i in range(5):
            v = self.pins[i].value()
            if v != self.levels[i]:
                self.levels[i] = v
                self.feed(["down" if v == 0 else "up", i])
        self.feed(["tick"])
        self.drive_leds(self.clock.now())

    def drive_leds(self, now):
        if not self.leds:
            return
        if self.led_mode == "pulse":
            phase = now % PULSE_MS
            half = PULSE_MS // 2
            duty = (phase if phase < half else PULSE_MS - phase) * 65535 // half
            for led in self.leds:
                led.duty_u16(duty)
        else:
            for i in range(5):
                on = self.led_mode == "one" and i == self.led_one
                self.leds[i].duty_u16(65535 if on else 0)

    # -- the loop ---------------------------------------------------------------------------------------
    def run(self):
        while self.running:
            now = self.clock.now()
            if self.mqtt is None and now >= self.retry_at:
                try:
                    self.connect()
                except OSError as exc:
                    self.drop(exc)
            if self.mqtt is not None:
                try:
                    self.mqtt.check_msg()
                    self.send_pending(now)
                    if now - self.pinged_at >= PING_MS:
                        self.bound(self.mqtt)
                        self.mqtt.ping()
                        self.pinged_at = now
                except OSError as exc:
                    self.drop(exc)
            self.poll()
            time.sleep_ms(POLL_MS)


def main():
    PicoPad(load_config()).run()
