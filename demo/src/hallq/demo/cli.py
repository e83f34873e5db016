"""``hallq demo``: a whole hall on one machine.

It starts the embedded broker (unless ``--broker`` names one), the real controller as a separate process
with the sample hall, the device roles that registered for the demo (entry point group ``hallq.demo``),
and the simulated hall of :mod:`.hallsim`; all of them share one scaled clock (``HALLQ_CLOCK``), so a hall
day passes in about two minutes (``--speed``). A live terminal view shows windows, queues and calls; at the
end the day's report is printed (``hallq controller report``), kept in ``{out}/report.txt`` and, with
``--report``, written as JSON; in a terminal the demo then waits for Enter, so a window that closes on exit
does not take the report with it. Ctrl-C stops everything cleanly and prints the report of the day so far.
Each run starts clean: the output folder (marked as the demo's own) is emptied, but for the hall's key.

The sample hall's ratings go to a local stand-in for the province's 好差评 system (:mod:`.province`), so
the report shows the upload outbox at work (sent, retried, rejected).

Same seed, same day? The simulated citizens are the same (arrival times, categories, priorities, service
times, no-shows, recalls, transfers, whether and how they would rate), and so are the real kiosk's extra
tickets' dice. What real processes on a shared machine do is not: clerks' calls and the controller's
answers take real milliseconds, so waits can differ by seconds between runs, a rating that depends on a
wait near 20 minutes can fall either side, and the real kiosk taps every 15 real seconds, so how many
numbers it takes depends on how long the run lasts. Counts of ratings and follow-ups may differ by a few.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from hallq.controller import config as hall_config
from hallq.shared import clock as hclock
from hallq.shared.config import ConfigError
from hallq.shared.demo import DemoContext, DemoProcess, participants
from hallq.shared.mqtt import HallClient, Message
from hallq.shared.schemas import ONLINE, to_builtins
from hallq.shared.topics import TopicError

from .hall import shape_of
from .hallsim import SimHall, Tally
from .model import Rates, bookings_csv, hhmm_to_s, simulate_visits
from .province import Province
from .view import HallPicture, render

log = logging.getLogger(__name__)

#: The sample hall shipped with the controller (``controller/examples/hall.toml``).
SAMPLE_HALL = Path(__file__).resolve().parents[4] / "controller" / "examples" / "hall.toml"
def _with_bookings(config_path: Path, cfg: hall_config.HallFile, out: Path, csv_text: str) -> Path:
    """Write the day's bookings into ``out/bookings/`` and, unless the hall config names a booking source
    already, a copy of the config that adds ``[appointments] folder`` (the path the controller runs)."""
    if cfg.appointments.folder or cfg.appointments.url:
        return config_path
    folder = out / "bookings"
    folder.mkdir(exist_ok=True)
    (folder / "bookings.csv").write_text(csv_text, encoding="utf-8")
    text = config_path.read_text(encoding="utf-8")
    line = f'folder = "{folder}"  # added by the demo: the day\'s bookings\n'
    header = re.search(r"^\[appointments\][ \t]*(#.*)?$", text, flags=re.M)
    if header is not None:  # the hall's own [appointments] (rules, no source): the folder goes in it
        text = text[: header.end()] + "\n" + line + text[header.end() + 1:]
    else:
        text = text.rstrip() + "\n\n[appointments]\n" + line
    copy = out / "hall.toml"
    copy.write_text(text, encoding="utf-8")
    return copy


#: Real seconds between "go" (the controller is online, the devices started) and the day's clock moving: the
#: simulated clients connect meanwhile. Until go every process's clock stands at the day's start.
STARTUP_S = 1.0
#: Simulated seconds between the clock's start and the first arrival.
LEAD_S = 120.0


#: Real seconds the day waits for a device that takes over part of the simulated hall (the real pad) to come
#: online; then it begins without it, saying so.
DEVICE_ONLINE_S = 60.0


def _wait_online(names: list[str], online: set[str], running: Running) -> None:
    """Hold the day's clock until every device that replaces part of the simulated hall is online (its MQTT
    status, published once it has subscribed). The simulated citizens at the real pad's window are told to
    press it only after their service ends: a pad that came up seconds after the day began never saw the
    first services end there, and those citizens' presses were lost (2 of 47 in a `make demo` at load ~10)."""
    deadline = time.monotonic() + DEVICE_ONLINE_S
    waiting = [n for n in names if n not in online]
    while waiting:
        ended = [n for n in waiting if running.ended(n)]
        if ended or time.monotonic() > deadline:
            why = "ended" if ended else f"is not online after {DEVICE_ONLINE_S:g} s"
            click.echo(f"demo: {', '.join(ended or waiting)} {why}; the day begins without waiting for it "
                       "(see its log in the output folder's logs/)", err=True)
            return
        time.sleep(0.05)
        waiting = [n for n in waiting if n not in online]


def parse_span(text: str | None) -> tuple[float, float] | None:
    """``"09:00-10:30"`` -> seconds since midnight; None stays None."""
    if not text:
        return None
    try:
        a, b = text.split("-")
        span = (hhmm_to_s(a.strip()), hhmm_to_s(b.strip()))
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected HH:MM-HH:MM, e.g. 09:00-10:30") from None
    if span[0] >= span[1]:
        raise click.BadParameter(f"{text!r}: the start must be before the end")
    return span


def has_screen() -> bool:
    """Whether device windows can open: on Linux a display server must be named; elsewhere assume so."""
    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def has_sound() -> bool:
    """Whether a sound device is there (on Linux: an ALSA playback device)."""
    if not sys.platform.startswith("linux"):
        return True
    return any(Path("/dev/snd").glob("pcmC*D*p"))


def _free_port(preferred: int = 1883) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port")


def _hallq(*args: str) -> list[str]:
    """The command line of ``hallq ARGS`` in this environment."""
    return [sys.executable, "-m", "hallq.shared.cli", *args]


@dataclass
class Running:
    """The processes the demo started, to stop them in reverse order."""

    procs: list[tuple[str, subprocess.Popen]] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str], log_file: Path) -> subprocess.Popen:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "ab") as out:
            # its own session: the terminal's Ctrl-C reaches the demo, which stops the others in order
            p = subprocess.Popen(argv, env=os.environ | env, stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs.append((name, p))
        return p

    def ended(self, name: str) -> bool:
        """The process ``name`` has ended (or was never started)."""
        return all(p.poll() is not None for n, p in self.procs if n == name)

    def stop(self, name: str | None = None, timeout: float = 10.0) -> None:
        """SIGTERM (then SIGKILL after ``timeout``) one process by name, or all in reverse start order."""
        for n, p in reversed(list(self.procs)):
            if name is not None and n != name:
                continue
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout)
                except subprocess.TimeoutExpired:
                    log.warning("%s did not stop on SIGTERM; killing it", n)
                    p.kill()
                    p.wait(5)
            self.procs.remove((n, p))


class Stop(Exception):
    """The demo was asked to stop (Ctrl-C or SIGTERM)."""


@click.command("demo")
@click.option("--broker", metavar="URL", default=None,
              help="Use this MQTT broker (mqtt://host:port) instead of starting the embedded one.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=SAMPLE_HALL,
              show_default="the sample hall", help="The hall configuration the controller runs.")
@click.option("--speed", type=click.FloatRange(min=1.0), default=270.0, show_default=True,
              help="Simulated seconds per real second (270: a 9-hour day in two minutes).")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the simulated day.")
@click.option("--load", type=click.FloatRange(0.05, 2.0), default=Rates().load, show_default=True,
              help="Work brought by the citizens / what the windows can do.")
@click.option("--span", metavar="HH:MM-HH:MM", default=None,
              help="Simulate only this part of the day (e.g. 09:00-10:00 for a short demo).")
@click.option("--headless", is_flag=True,
              help="No live view; the device roles run headless too (as they do anyway without a display).")
@click.option("--no-devices", is_flag=True, help="Do not start the device roles registered for the demo.")
@click.option("--quiet", is_flag=True, help="The devices do not speak, even where there is a sound device.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the day's figures as JSON here.")
@click.option("--secure", is_flag=True,
              help="Provision a throwaway keyring and run the hall on Mosquitto with TLS and the ACL, every "
                   "process as its own identity (make demo SECURE=1).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-out"),
              show_default=True, help="Output folder: hall.db, logs, the devices' files.")
def command(broker: str | None, config_path: Path, speed: float, seed: int, load: float, span: str | None,
            headless: bool, no_devices: bool, quiet: bool, report_path: Path | None, secure: bool, out: Path) -> None:
    """Run a whole simulated hall day on this machine: broker, controller, devices, citizens, clerks."""
    try:
        cfg = hall_config.load(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    span_s = parse_span(span)
    out = out.resolve()
    fresh_output(out)

    tz = ZoneInfo(cfg.hall.timezone)
    today = datetime.now(tz).date()
    midnight = datetime.combine(today, dtime(0), tz)
    shape = shape_of(cfg)
    visits = simulate_visits(shape, Rates(load=load), seed=seed, span=span_s)
    first_s = span_s[0] if span_s else shape.hours[0][0]
    # every process's clock stands at the day's start until the demo says go (once all of them are up): a
    # busy machine that takes seconds to start them does not make the same seed a different day
    go_file = out / ".clock-go"
    go_file.unlink(missing_ok=True)
    clock = hclock.scaled(midnight + timedelta(seconds=max(0.0, first_s - LEAD_S)), speed, cfg.hall.timezone,
                          go_file=str(go_file))
    env = {hclock.ENV: clock.to_env()}

    secret_file = out / "hall.key"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_hex(32) + "\n")
        secret_file.chmod(0o600)
    secret = bytes.fromhex(secret_file.read_text().strip())
    db = out / "hall.db"
    for suffix in ("", "-wal", "-shm"):  # a fresh day every run
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    # the day's bookings, dropped in a folder the controller reads ([appointments] folder)
    config_path = _with_bookings(config_path, cfg, out, bookings_csv(visits, today.isoformat()))

    undo_log = _log_to(out / "logs" / "demo.log")
    stop = threading.Event()

    def on_term(signum, frame):
        raise Stop

    old_term = signal.signal(signal.SIGTERM, on_term)
    running = Running()
    tally: Tally | None = None
    sim: SimHall | None = None
    picture: HallPicture | None = None
    interrupted = False
    started: list[DemoProcess] = []
    secure_hall = None
    if secure and broker is not None:
        raise click.UsageError("--secure runs its own Mosquitto: leave --broker out")
    try:
        with ExitStack() as stack:
            if secure:
                from . import secure as secure_mode

                try:
                    secure_hall = secure_mode.start(config_path, cfg, out)
                except (ConfigError, ValueError, OSError) as exc:
                    raise click.ClickException(f"--secure: {exc}") from None
                stack.callback(secure_hall.stop)
                broker = secure_hall.url
                click.echo(f"demo: secure broker (TLS + ACL, {len(list(secure_hall.identities.iterdir()))} "
                           f"identities) from the keyring in {secure_hall.identities.parent}", err=True)
            elif broker is None:
                from .broker import EmbeddedBroker

                emb = EmbeddedBroker("127.0.0.1", _free_port()).start()
                stack.callback(emb.stop)
                broker = emb.url
            stack.callback(running.stop)  # the devices and the controller stop before the broker
            click.echo(f"demo: broker {broker}, hall {cfg.hall.id!r}, {len(visits)} citizens, "
                       f"speed x{speed:g}, output {out}", err=True)

            watcher = HallClient(secure_hall.connect_as("demo-view") if secure_hall else broker, cfg.hall.id,
                                 "demo-view", auto_online=False)
            picture = HallPicture(watcher.topics)
            live_online = threading.Event()
            devices_online: set[str] = set()  # devices that said online on this run (not a retained leftover)

            def feed(msg: Message) -> None:
                picture.feed(msg)
                if msg.retain or msg.payload != ONLINE.encode():
                    return
                if msg.topic == watcher.topics.controller_status:
                    live_online.set()
                else:
                    try:
                        client, kind = watcher.topics.parse_device_topic(msg.topic)
                    except TopicError:
                        return
                    if kind == "status":
                        devices_online.add(client)

            watcher.subscribe(watcher.topics.everything, feed)
            watcher.start()
            stack.callback(watcher.stop)
            if not watcher.wait_connected(10):
                raise click.ClickException(f"cannot reach the broker {broker}")

            upload: list[str] = []
            if cfg.haocp is not None:
                province = Province(seed).start()
                stack.callback(province.stop)
                upload = ["--haocp-url", province.url]
            if secure_hall is not None:  # the controller as its identity, on the hall.toml that lists every device
                ctl_args = ("--config", str(secure_hall.hall_toml), "--device",
                            str(secure_hall.device_file("controller")))
            else:
                ctl_args = ("--config", str(config_path.resolve()), "--broker", broker)
            if not no_devices:
                # the devices' preparation first (the dashboard's account: a process and an Argon2 hash, seconds
                # on a busy machine): the clock must not run while it is done, or the day starts late
                ctx = DemoContext(hall=cfg.hall.id, broker=broker, out_dir=out,
                                  headless=headless or not has_screen(),
                                  windows=tuple(sorted(shape.windows)), secret_file=secret_file, env=dict(env),
                                  sound=not quiet and has_sound(),
                                  identities=secure_hall.identities if secure_hall else None,
                                  config=Path(ctl_args[1]))
                try:
                    started = participants(ctx)
                except Exception as exc:  # a broken role must not take the demo down
                    click.echo(f"demo: the device roles could not be loaded ({exc}); going on without them", err=True)
                if secure_hall is not None:
                    lost = [p.name for p in started if not secure_hall.device_file(p.name).exists()]
                    if lost:
                        raise click.ClickException(f"--secure: no identity for the demo's {', '.join(lost)} "
                                                   "(hallq.demo.secure.demo_devices must list it)")
            ctl = running.start("controller", _hallq("controller", *ctl_args, "--db", str(db), *upload),
                                env, out / "logs" / "controller.log")
            deadline = time.monotonic() + 30
            while not live_online.wait(0.1):
                if ctl.poll() is not None or time.monotonic() > deadline:
                    tail = (out / "logs" / "controller.log").read_text(errors="replace")[-2000:]
                    raise click.ClickException(f"the controller did not come online:\n{tail}")

            replaces: set[str] = set()
            for p in started:
                running.start(p.name, p.argv, env, out / "logs" / f"{p.name}.log")
                replaces.update(p.replaces)
            _wait_online([p.name for p in started if p.replaces], devices_online, running)

            sim = SimHall(broker=broker, cfg=cfg, shape=shape, visits=visits, clock=clock, midnight=midnight,
                          replaces=replaces, secret=secret, seed=seed, stop=stop,
                          connect_as=secure_hall.connect_as if secure_hall else None,
                          until_s=min(span_s[1], max(b for _, b in shape.hours)) if span_s else None)
            result: list[Tally] = []
            hclock.go(go_file, time.time() + STARTUP_S)  # the day begins (the simulated clients connect meanwhile)
            runner = threading.Thread(target=lambda: result.append(sim.run()), name="sim", daemon=True)
            runner.start()
            stack.callback(runner.join, 10)  # (callbacks run last first: halt, then join)
            stack.callback(sim.halt)
            _watch(runner, sim, picture, clock, headless, speed, seed, len(started), ctl)
            tally = result[0] if result else sim.tally
            pads = [p.name for p in started if p.name.startswith("pad")]
            if pads and tally.pad_asked:  # the day's last press may still be on its way: not cut off
                _await_pad_ratings(db, today, tally.pad_asked, pads)
    except (KeyboardInterrupt, Stop):
        interrupted = True
        stop.set()
        click.echo("\ndemo: stopping", err=True)
    finally:
        stop.set()
        running.stop()
        signal.signal(signal.SIGTERM, old_term)
        undo_log()

    if tally is None and sim is not None:
        tally = sim.tally  # stopped: what the simulated hall did so far
    if not db.exists():
        return  # stopped before the controller wrote anything
    text = _report(db, today, tally, [p.name for p in started], env, clock.now(), interrupted)
    click.echo(text)
    (out / "report.txt").write_text(text + "\n", encoding="utf-8")
    if report_path is not None and tally is not None:
        _write_json(report_path, db, cfg.hall.id, today, speed, seed, load, span, tally,
                    [p.name for p in started], clock.now())
        click.echo(f"demo: report written to {report_path}", err=True)
    click.echo(f"demo: this report is kept in {out / 'report.txt'}; the day's record, logs and device files "
               f"are in {out} (`hallq controller report --db {db}` prints it again)", err=True)
    if not headless and sys.stdin.isatty() and sys.stdout.isatty():
        try:
            click.prompt("demo: press Enter to close", default="", show_default=False, prompt_suffix="", err=True)
        except (click.Abort, EOFError, KeyboardInterrupt):
            pass


def _watch(runner: threading.Thread, sim: SimHall, picture: HallPicture, clock: hclock.Clock,
           headless: bool, speed: float, seed: int, devices: int, controller: subprocess.Popen) -> None:
    """Show the live view (or a progress line now and then) until the simulated day is over.

    If the controller process ends on its own, the day cannot go on: the simulation is stopped and the
    demo fails, naming the controller's log."""

    def check() -> None:
        if controller.poll() is not None:
            sim.halt()
            runner.join(10)
            raise click.ClickException(f"the controller ended (exit status {controller.returncode}) in the "
                                       "middle of the day; see its log in the output folder's logs/")

    def footer() -> str:
        t = sim.snapshot()
        sat = f"{t['satisfaction'] * 100:.1f}%" if t["satisfaction"] is not None else "-"
        return (f"simulated: x{speed:g} · seed {seed} · citizens {t['arrived']}/{t['visits']} · "
                f"served {t['served']} · no-show {t['noshow']} · transferred {t['transferred']} · "
                f"rated {t['rated']} ({sat} satisfied) · devices {devices} · Ctrl-C stops")

    if headless:
        last = 0.0
        while runner.is_alive():
            runner.join(0.2)
            check()
            if time.monotonic() - last >= 10:
                last = time.monotonic()
                click.echo(f"demo: {clock.now():%H:%M} {footer()}", err=True)
        return
    from rich.console import Console
    from rich.live import Live

    console = Console()
    with Live(render(picture, clock.now(), footer()), console=console, refresh_per_second=4,
              transient=False) as live:
        while runner.is_alive():
            runner.join(0.25)
            check()
            live.update(render(picture, clock.now(), footer()))


def _log_to(path: Path):
    """Send the log to a file (the terminal belongs to the live view and the report); returns the undo."""
    root = logging.getLogger()
    removed = [h for h in root.handlers
               if type(h) is logging.StreamHandler and getattr(h, "stream", None) in (sys.stderr, sys.stdout)]
    for h in removed:
        root.removeHandler(h)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    levels = {name: logging.getLogger(name).level for name in ("amqtt", "transitions")}
    for name in levels:
        logging.getLogger(name).setLevel(logging.WARNING)

    def undo() -> None:
        root.removeHandler(handler)
        handler.close()
        for h in removed:
            root.addHandler(h)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)

    return undo


def day_figures(db: Path, day: date, now: datetime) -> dict | None:
    """The controller's figures of ``day`` from its record (as ``hallq controller report`` computes them)."""
    from hallq.controller import stats
    from hallq.controller.db import connect

    try:
        conn = connect(db, readonly=True)
    except Exception as exc:  # no record: the controller never ran
        log.warning("cannot read %s: %s", db, exc)
        return None
    try:
        return to_builtins(stats.compute(conn, day, now))
    finally:
        conn.close()


def pad_check(db: Path, day: date, asked: dict[str, str], pads: list[str]) -> dict:
    """The presses the simulated citizens were asked to make on the real pads, against the ratings the
    controller stored from those pads: each asked press should be exactly one stored rating of the case it
    was for, at the level pressed. ``lost``: asked, nothing stored; ``other_level``: stored at another level
    (a press charged to the wrong case); ``unasked``: a real pad's rating nobody pressed for."""
    from hallq.controller.db import connect

    stored: dict[str, str] = {}
    if pads:
        conn = connect(db, readonly=True)
        try:
            marks = ",".join("?" * len(pads))
            rows = conn.execute(f"SELECT ticket, level FROM ratings WHERE day = ? AND client IN ({marks})",
                                (day.isoformat(), *pads)).fetchall()
        finally:
            conn.close()
        stored = {t: lv for t, lv in rows}
    return {
        "asked": len(asked),
        "stored": len(stored),
        "rated_as_asked": sum(1 for t, lv in asked.items() if stored.get(t) == lv),
        "lost": sorted(t for t in asked if t not in stored),
        "other_level": sorted([t, lv, stored[t]] for t, lv in asked.items() if t in stored and stored[t] != lv),
        "unasked": sorted(t for t in stored if t not in asked),
    }


#: Real seconds the demo waits, at the day's end, for the real pad's last ratings to be stored.
PAD_SETTLE_S = 10.0


def _await_pad_ratings(db: Path, day: date, asked: dict[str, str], pads: list[str]) -> None:
    """Before the devices are stopped: wait until every press asked of the real pads is stored (a citizen
    served just before the day's end presses, and the pad sends, a moment after the simulation is over)."""
    deadline = time.monotonic() + PAD_SETTLE_S
    while pad_check(db, day, asked, pads)["lost"] and time.monotonic() < deadline:
        time.sleep(0.2)


def pad_lines(check: dict, pads: list[str]) -> list[str]:
    """The report's lines on the real pad's presses: a loss shows, with the tickets and where to look."""
    lines = [f"真实评价器 the real pad ({', '.join(pads)}): 按键 presses asked {check['asked']}, "
             f"评价 ratings stored {check['stored']}, as pressed {check['rated_as_asked']}."]
    faults = [(k, check[k]) for k in ("lost", "other_level", "unasked") if check[k]]
    for key, items in faults:
        what = {"lost": "丢失 lost (asked, not stored)", "other_level": "错记 stored at another level",
                "unasked": "多出 stored, nobody pressed"}[key]
        lines.append(f"  {what}: {len(items)}: {', '.join(map(str, items[:20]))}"
                     f"{' …' if len(items) > 20 else ''} (see logs/{pads[0]}.log)")
    return lines


MARKER = ".hallq-demo"


def fresh_output(out: Path) -> None:
    """Start the run clean: the output folder emptied (logs, record, device files of earlier runs), but for the
    hall's key. A folder the demo did not make (no marker in it) is left alone: the demo refuses it."""
    import shutil

    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise click.ClickException(f"{out} is not empty and not a demo output folder: choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("hallq demo output: emptied at the start of every run\n", encoding="utf-8")
    for p in out.iterdir():
        if p.name in (MARKER, "hall.key"):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    (out / "logs").mkdir()


def _report(db: Path, day: date, tally: Tally | None, devices: list[str], env: dict[str, str], now: datetime,
            interrupted: bool) -> str:
    """The controller's report of the day, and how its figures split between the simulated citizens and the
    real devices: one set of figures (the record's), explained where the simulation's own count differs."""
    # on the demo's clock, like the controller: follow-up deadlines and the like are the demo's day's
    r = subprocess.run(_hallq("controller", "report", "--db", str(db), "--date", day.isoformat()),
                       capture_output=True, text=True, timeout=60, env=os.environ | env)
    lines = []
    if interrupted:
        lines.append(f"demo: stopped at {now:%H:%M} (hall time): the report of the day so far")
    if r.returncode == 0 and r.stdout.strip():
        lines.append(r.stdout.rstrip())
    else:
        lines.append(f"demo: `hallq controller report` failed: {r.stderr.strip()[-500:]}")
    figures = day_figures(db, day, now)
    if tally is not None and figures is not None:
        h = {"issued": 0, "served": 0, "ratings": {}, **figures["hall"]}  # zeros are left out of the payload
        t = tally.as_dict()
        kiosks = [d for d in devices if d.startswith("kiosk")]
        pads = [d for d in devices if d.startswith("pad")]
        rated = sum(h.get("ratings", {}).values())
        lines.append(
            f"\n其中 of which: 取号 {h['issued']} = 模拟市民 {t['taken']} simulated citizens + "
            f"{h['issued'] - t['taken']} 真实取号机 at the real kiosk ({', '.join(kiosks) or 'none'}); "
            f"办结 {h['served']} = {t['served']} + {h['served'] - t['served']}; "
            f"评价 {rated} = 模拟评价器 {t['rated']} virtual pads + {rated - t['rated']} 真实评价器 on the real pad "
            f"({', '.join(pads) or 'none'}; {t['pad_presses']} presses asked).")
        if pads:
            lines.extend(pad_lines(pad_check(db, day, tally.pad_asked, pads), pads))
        wait = f"{t['wait_mean_min']}/{t['wait_p90_min']}" if t["wait_mean_min"] is not None else "-"
        lines.append(f"模拟市民 the simulated citizens alone: {t['visits']} in the model, {t['arrived']} came, "
                     f"{t['noshow']} no-shows, {t['transferred']} transfers, 等候(平均/P90) {wait} min "
                     f"(as they measured it), refused {t['refused'] or 0}.")
        if t["est_mae_min"] is not None:
            cover = f"{t['est_range_coverage'] * 100:.0f}%" if t["est_range_coverage"] is not None else "-"
            lines.append(f"estimates: mean absolute error {t['est_mae_min']} min; the ticket's range held the wait "
                         f"for {cover} of the tickets")
    return "\n".join(lines)


def _write_json(path: Path, db: Path, hall: str, day: date, speed: float, seed: int, load: float,
                span: str | None, tally: Tally, devices: list[str], now: datetime) -> None:
    stats = day_figures(db, day, now)
    doc = {
        "hall": hall,
        "date": day.isoformat(),
        "speed": speed,
        "seed": seed,
        "load": load,
        "span": span,
        "devices": devices,
        "simulated": tally.as_dict(),
        "controller": stats,
        "pad": pad_check(db, day, tally.pad_asked, [d for d in devices if d.startswith("pad")]),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

