"""``hallq controller``: run a hall's controller, or (``hallq controller report``) print a day's figures."""

from __future__ import annotations

import csv
import logging
import signal
import sys
import threading
import unicodedata
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from hallq.shared.config import BrokerURL, ConfigError
from hallq.shared.schemas import LEVEL_NAMES_ZH, LEVELS, Figures

log = logging.getLogger(__name__)


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="The hall config (TOML).")
@click.option("--broker", default="mqtt://127.0.0.1:1883", show_default=True, envvar="HALLQ_BROKER",
              help="mqtt://[user[:password]@]host[:port] or mqtts://...; user and password may also come from "
                   "HALLQ_MQTT_USERNAME / HALLQ_MQTT_PASSWORD.")
@click.option("--db", type=click.Path(dir_okay=False), default="/var/lib/hallq/hall.db", show_default=True,
              help="The hall's SQLite record.")
@click.pass_context
def command(ctx: click.Context, config_path: str | None, broker: str, db: str) -> None:
    """The hall controller: issues the numbers, dispatches them, keeps the hall's record.

    Runs until SIGTERM or Ctrl-C (then publishes `stopped`). `hallq controller report` prints a day's figures.
    """
    if ctx.invoked_subcommand is not None:
        return
    if config_path is None:
        raise click.UsageError("--config is needed to run the controller")
    from hallq.shared.clock import from_env

    from . import config as hall_config
    from .app import Controller
    from .storage import StorageError

    try:
        cfg = hall_config.load(config_path)
        url = BrokerURL.parse(broker)
        clock = from_env(cfg.hall.timezone)
        controller = Controller(cfg, url, db, clock)
    except (ConfigError, StorageError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None

    done = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    controller.start()
    log.info("controller of hall %s: broker %s, record %s", cfg.hall.id, url, db)
    while not done.wait(0.5):
        pass
    controller.stop()
    log.info("controller stopped (%d requests handled in %d commits, %d malformed)", controller.handled,
             controller.batches, controller.malformed)


@command.command()
@click.option("--db", type=click.Path(exists=True, dir_okay=False), required=True, help="The hall's SQLite record.")
@click.option("--date", "day", help="The day (YYYY-MM-DD); today by default.")
@click.option("--csv", "as_csv", is_flag=True, help="Comma-separated values for a spreadsheet.")
def report(db: str, day: str | None, as_csv: bool) -> None:
    """A day's figures: the hall, each window, each clerk, each half hour; the quietest half hours."""
    from datetime import datetime

    from . import stats
    from .storage import connect

    conn = connect(Path(db), readonly=True)
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    tz = ZoneInfo(meta.get("timezone", "Asia/Shanghai"))
    try:
        d = date.fromisoformat(day) if day else datetime.now(tz).date()
    except ValueError:
        raise click.BadParameter(f"{day!r} is not a date (YYYY-MM-DD)", param_hint="--date") from None
    s = stats.compute(conn, d, datetime.now(tz))
    staff = stats.staff_names(conn, d)
    wnames = stats.window_names(conn)
    rows: list[tuple[str, str, Figures]] = [("hall", meta.get("name", meta.get("hall", "")), s.hall)]
    rows += [("window", wnames.get(k, k), f) for k, f in s.windows.items()]
    rows += [("clerk", f"{staff.get(k, '')} ({k})", f) for k, f in s.staff.items()]
    rows += [("half_hour", k, f) for k, f in s.half_hours.items()]
    if as_csv:
        w = csv.writer(sys.stdout)
        w.writerow(["date", "slice", "name", *_COLUMNS, *LEVELS, "satisfaction"])
        for kind, name, f in rows:
            w.writerow([s.date, kind, name, *_values(f), *(f.ratings.get(lv, 0) for lv in LEVELS),
                        "" if f.satisfaction is None else f.satisfaction])
        return
    click.echo(f"{meta.get('name', '')} ({meta.get('hall', '')}) — {s.date}")
    header = ["", *_COLUMN_NAMES, "评价数", "满意率"]
    for title, kind in (("全厅 hall", "hall"), ("窗口 windows", "window"), ("工作人员 clerks", "clerk"),
                        ("每半小时 half hours", "half_hour")):
        table = [[name, *_show(f)] for k, name, f in rows if k == kind]
        if not table:
            continue
        click.echo(f"\n{title}")
        click.echo(_table(header, table))
    if s.quiet_half_hours:
        click.echo(f"\n错时办事 quietest half hours: {', '.join(s.quiet_half_hours)}")
    if s.hall.ratings:
        levels = ", ".join(f"{LEVEL_NAMES_ZH[lv]} {s.hall.ratings.get(lv, 0)}" for lv in LEVELS)
        click.echo(f"评价 ratings: {levels}")


_COLUMNS = ["issued", "called", "served", "noshow", "transferred", "wait_mean_min", "wait_p90_min",
            "service_mean_min"]
_COLUMN_NAMES = ["取号", "叫号", "办结", "过号", "转号", "平均等候", "P90等候", "平均办理"]


def _values(f: Figures) -> list[object]:
    return [f.issued, f.called, f.served, f.noshow, f.transferred,
            "" if f.wait_mean_min is None else f.wait_mean_min,
            "" if f.wait_p90_min is None else f.wait_p90_min,
            "" if f.service_mean_min is None else f.service_mean_min]


def _show(f: Figures) -> list[str]:
    rated = sum(f.ratings.values())
    sat = "" if f.satisfaction is None else f"{f.satisfaction * 100:.2f}%"
    return [str(v) for v in _values(f)] + [str(rated) if rated else "", sat]


def _width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def _table(header: list[str], rows: list[list[str]]) -> str:
    cols = len(header)
    widths = [max(_width(r[i]) for r in [header, *rows]) for i in range(cols)]

    def line(r: list[str]) -> str:
        cells = [r[0] + " " * (widths[0] - _width(r[0]))]
        cells += [" " * (widths[i] - _width(r[i])) + r[i] for i in range(1, cols)]
        return "  ".join(cells).rstrip()

    return "\n".join([line(header), *(line(r) for r in rows)])
