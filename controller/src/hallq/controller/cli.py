"""``hallq controller``: run a hall's controller, or (``hallq controller report``) print a day's figures."""

from __future__ import annotations

import logging
import signal
import sqlite3
import sys
import threading
import unicodedata
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from hallq.shared import clock
from hallq.shared.config import BrokerURL, ConfigError
from hallq.shared.identity import DEVICE_HELP, for_app
from hallq.shared.schemas import LEVEL_NAMES_ZH, LEVELS, Figures

from .report import COLUMN_NAMES, COLUMNS, WINDOW_ONLY

log = logging.getLogger(__name__)


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="The hall config (TOML).")
@click.option("--device", "device_path", type=click.Path(dir_okay=False), help=DEVICE_HELP)
@click.option("--broker", envvar="HALLQ_BROKER",
              help="mqtt://[user[:password]@]host[:port] or mqtts://...; user and password may also come from "
                   "HALLQ_MQTT_USERNAME / HALLQ_MQTT_PASSWORD. Default: the identity's broker, else "
                   "mqtt://127.0.0.1:1883.")
@click.option("--db", type=click.Path(dir_okay=False), default="/var/lib/hallq/hall.db", show_default=True,
              help="The hall's SQLite record.")
@click.option("--haocp-url", metavar="URL", help="Upload ratings here instead of [haocp] url (`hallq demo` gives "
                                                 "its local stand-in for the province).")
@click.pass_context
def command(ctx: click.Context, config_path: str | None, device_path: str | None, broker: str | None,
            db: str, haocp_url: str | None) -> None:
    """The hall controller: issues the numbers, dispatches them, keeps the hall's record.

    Runs until SIGTERM or Ctrl-C (then publishes `stopped`). `hallq controller report` prints a day's figures.
    """
    if ctx.invoked_subcommand is not None:
        return
    try:
        ident, config_path = for_app(device_path, config_path, "controller")
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if config_path is None:
        raise click.UsageError("--config is needed to run the controller")
    from hallq.shared.clock import from_env

    from . import config as hall_config
    from .app import Controller
    from .storage import StorageError, StorageUnwritable

    try:
        cfg = hall_config.load(config_path)
        if haocp_url:
            if cfg.haocp is None:
                raise ConfigError(f"--haocp-url: {config_path} has no [haocp] section (area_code, scheme) to upload with")
            import msgspec

            cfg = msgspec.structs.replace(cfg, haocp=hall_config.HaocpSection(
                **{**msgspec.structs.asdict(cfg.haocp), "url": haocp_url}))
        if broker:
            url = BrokerURL.parse(broker)
        elif ident is not None:
            url = ident.broker
            if ident.hall != cfg.hall.id:
                raise ConfigError(f"{config_path} is hall {cfg.hall.id!r} but the identity is of hall {ident.hall!r}")
        else:
            url = BrokerURL.parse("mqtt://127.0.0.1:1883")
        clock = from_env(cfg.hall.timezone)
        controller = Controller(cfg, url, db, clock, client_id=ident.device if ident is not None else None)
    except (StorageUnwritable, sqlite3.OperationalError) as exc:
        # as at run time: one line and EX_TEMPFAIL (75), so that systemd tries again once the disk is fixed
        text = str(exc) if isinstance(exc, StorageUnwritable) else f"cannot write the record {db}: {exc}"
        click.echo(f"hallq controller: {text}", err=True)
        sys.exit(75)
    except (ConfigError, StorageError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None

    done = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    from hallq.shared.service import Notifier

    from .claim import OtherController

    notifier = Notifier()  # systemd: READY once started, watchdog pings only while the worker turns
    try:
        controller.start()
    except OtherController as exc:
        controller.storage.close()
        raise click.ClickException(str(exc)) from None
    log.info("controller of hall %s: broker %s, record %s", cfg.hall.id, url, db)
    notifier.ready(f"hall {cfg.hall.id}")
    while not done.wait(0.5) and not controller.displaced.is_set():
        if controller.healthy():
            notifier.alive()
    notifier.stopping()
    if controller.displaced.is_set():
        controller.stop(displaced=True)
        raise click.ClickException(controller.displaced_by)
    controller.stop()
    log.info("controller stopped (%d requests handled in %d commits, %d malformed)", controller.handled,
             controller.batches, controller.malformed)


@command.command()
@click.option("--db", type=click.Path(exists=True, dir_okay=False), required=True, help="The hall's SQLite record.")
@click.option("--date", "day", help="The day (YYYY-MM-DD); today by default.")
@click.option("--csv", "as_csv", is_flag=True, help="Comma-separated values for a spreadsheet.")
def report(db: str, day: str | None, as_csv: bool) -> None:
    """A day's figures: the hall, each window, each clerk, each half hour; the quietest half hours."""
    from . import report as day_report
    from . import stats

    conn = _record(db)
    meta = day_report.meta(conn)  # type: ignore[arg-type]
    tz = ZoneInfo(meta.get("timezone", "Asia/Shanghai"))
    now = _now(str(tz))
    try:
        d = date.fromisoformat(day) if day else now.date()
    except ValueError:
        raise click.BadParameter(f"{day!r} is not a date (YYYY-MM-DD)", param_hint="--date") from None
    if as_csv:
        day_report.write_csv(sys.stdout, conn, d, now)  # type: ignore[arg-type]
        return
    s, rows = day_report.rows(conn, d, now)  # type: ignore[arg-type]
    click.echo(f"{meta.get('name', '')} ({meta.get('hall', '')}) — {s.date}")
    header = ["", *COLUMN_NAMES, "评价数", "满意率"]
    for title, kind in (("全厅 hall", "hall"), ("窗口 windows", "window"), ("工作人员 clerks", "clerk"),
                        ("每半小时 half hours", "half_hour")):
        table = [[name, *_show(f)] for k, name, f in rows if k == kind]
        if not table:
            continue
        click.echo(f"\n{title}")
        if kind in ("window", "clerk"):  # numbers are taken at a kiosk: a window or a clerk issues none
            click.echo(_table([header[0], *header[2:]], [[r[0], *r[2:]] for r in table]))
        else:  # idle time with people waiting is a window's (and its clerk's) figure
            keep = [i for i, c in enumerate(["", *COLUMNS, "", ""]) if c not in WINDOW_ONLY]
            click.echo(_table([header[i] for i in keep], [[r[i] for i in keep] for r in table]))
    if s.quiet_half_hours:
        click.echo(f"\n错时办事 quietest half hours: {', '.join(s.quiet_half_hours)}")
    else:
        click.echo(f"\n错时办事 quietest half hours: 取号不足 {stats.QUIET_MIN_TICKETS} 个，暂不推荐 "
                   f"(fewer than {stats.QUIET_MIN_TICKETS} numbers taken: none named yet)")
    if s.appointments is not None:
        a = s.appointments
        wait = "" if a.wait_p90_min is None else f", 时段后等候 wait after the slot: 平均 mean {a.wait_mean_min}, P90 {a.wait_p90_min} 分钟 min"
        click.echo(f"预约 appointments: 预约 booked {a.booked}, 签到 checked in {a.checked_in}, 迟到 late {a.late}, "
                   f"爽约 no-show {a.noshow}{wait}")
    if s.hall.ratings:
        levels = ", ".join(f"{LEVEL_NAMES_ZH[lv]} {s.hall.ratings.get(lv, 0)}" for lv in LEVELS)
        click.echo(f"评价 ratings: {levels}")
    _haocp_report(conn, d, now)


def _haocp_report(conn: object, d: date, now: object) -> None:
    """The 好差评 uploads of the day's ratings and the open follow-ups of bad reviews."""
    from . import followups
    from .haocp import outbox

    up = outbox.summary(conn, d.isoformat())  # type: ignore[arg-type]
    click.echo(f"好差评上传 uploads: 已上传 sent {up['sent']}, 待上传 pending {up['pending']}, "
               f"被拒 rejected {up['rejected']}" + (f", 市级平台上报 by the centre {up['central']}" if up.get("central") else ""))
    open_ = followups.rows(conn)  # type: ignore[arg-type]
    today = now.date().isoformat()  # type: ignore[attr-defined]
    overdue = sum(1 for r in open_ if r["due"] < today)
    click.echo(f"待回访差评 open follow-ups: {len(open_)} (逾期 overdue {overdue})")
    if open_:
        click.echo(_followup_table(open_, today))


@command.group("followups", invoke_without_command=True)
@click.option("--db", type=click.Path(exists=True, dir_okay=False), help="The hall's SQLite record.")
@click.option("--all", "show_all", is_flag=True, help="Closed follow-ups too, with who called back and what was done.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@click.pass_context
def followups_command(ctx: click.Context, db: str | None, show_all: bool, as_json: bool) -> None:
    """Follow-ups of bad reviews (差评回访): list the open ones (or --all).

    `hallq controller followups close ID --by NAME --action TEXT --db hall.db` records the call-back.
    """
    ctx.ensure_object(dict)["db"] = db
    if ctx.invoked_subcommand is not None:
        return
    if db is None:
        raise click.UsageError("--db is needed")
    import json as jsonlib

    from . import followups

    conn = _record(db)
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    today = date.today() if "timezone" not in meta else _today(meta["timezone"])
    found = followups.rows(conn, include_closed=show_all)
    if as_json:
        for r in found:
            click.echo(jsonlib.dumps(r, ensure_ascii=False))
        return
    if not found:
        click.echo("没有待回访的差评 no open follow-ups" if not show_all else "没有差评 no follow-ups")
        return
    click.echo(_followup_table(found, today.isoformat()))


@followups_command.command("close")
@click.argument("followup_id", type=int)
@click.option("--by", "by", required=True, help="Who called the citizen back (回访人).")
@click.option("--action", required=True, help="What was done (整改情况).")
@click.option("--db", type=click.Path(exists=True, dir_okay=False), help="The hall's SQLite record.")
@click.pass_context
def followups_close(ctx: click.Context, followup_id: int, by: str, action: str, db: str | None) -> None:
    """Close follow-up ID: record who called the citizen back and what was done."""
    from . import followups
    from .db import connect

    db = db or ctx.obj.get("db")
    if db is None:
        raise click.UsageError("--db is needed")
    conn = connect(Path(db))
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    now = _now(meta.get("timezone", "Asia/Shanghai"))
    try:
        r = followups.close(conn, followup_id, by, action, now)
    except followups.FollowupError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        conn.close()
    click.echo(f"follow-up {r['id']} ({r['ticket']}, window {r['window']}) closed by {r['called_back_by']}: "
               f"{r['action']}")


@command.command("bookings")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False), required=True,
              help="The hall config (its categories).")
def bookings_command(files: tuple[Path, ...], config_path: str) -> None:
    """Check booking files (CSV or JSON) before dropping them in the bookings folder: every malformed row
    with its line; exit status 1 if there is one."""
    from . import config as hall_config
    from .bookings import kind_of, parse

    try:
        cfg = hall_config.load(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    bad = 0
    for f in files:
        kind = kind_of(f.name)
        if kind is None:
            raise click.ClickException(f"{f}: a booking file ends in .csv or .json")
        try:
            text = f.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise click.ClickException(f"{f}: not UTF-8 text") from None
        got, errors = parse(text, kind, [c.code for c in cfg.categories])
        for e in errors:
            click.echo(f"{f} {e}")
        days = sorted({b.day for b in got})
        span = f" for {days[0]}" + (f" to {days[-1]}" if len(days) > 1 else "") if days else ""
        gone = sum(1 for b in got if b.cancelled)
        cancelled = f" ({gone} of them cancelled)" if gone else ""
        click.echo(f"{f}: {len(got)} bookings{span}{cancelled}, {len(errors)} malformed rows (skipped on import)")
        bad += len(errors)
    if bad:
        sys.exit(1)


def _record(db: str) -> object:
    """The hall's record, read-only, at the schema this hallq reads (or a clear error)."""
    from . import schema
    from .db import connect

    conn = connect(Path(db), readonly=True)
    v = schema.version(conn)
    if v > schema.VERSION:
        conn.close()
        raise click.ClickException(f"{db} was written by a newer hallq (schema {v}; this one reads {schema.VERSION})")
    if v < schema.VERSION:
        conn.close()
        raise click.ClickException(f"{db} was written by an older hallq (schema {v}): start this hallq's "
                                   "controller on it once, which upgrades it in place, then ask again")
    return conn


def _now(tz: str) -> datetime:
    """Now in the hall's time zone: the demo's scaled clock when the demo runs us, else the real one."""
    return clock.from_env(tz).now()


def _today(tz: str) -> date:
    return _now(tz).date()


def _followup_table(found: list[dict], today: str) -> str:
    header = ["编号", "票号", "窗口", "评价", "评价时间", "回访期限", "工作人员", "办件编号", "回访"]
    table = []
    for r in found:
        due = r["due"] + (" 逾期" if r["closed_at"] is None and r["due"] < today else "")
        done = f"{r['called_back_by']}: {r['action']}" if r.get("closed_at") else ""
        table.append([str(r["id"]), r["ticket"], str(r["window"]), LEVEL_NAMES_ZH.get(r["level"], r["level"]),
                      r["rated_at"][:16].replace("T", " "), due, r["staff_name"] or "", r["case_id"] or "", done])
    return _table(header, table)


def _show(f: Figures) -> list[str]:
    from .report import values as _values

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


@command.command("central")
@click.option("--db", required=True, type=click.Path(exists=True, dir_okay=False), help="The hall's SQLite record.")
@click.option("--new-stream", is_flag=True, help="After restoring the record from a backup (controller stopped): "
              "ship the whole record again under a new stream (the centre keeps each row's newest version).")
def central_command(db: str, new_stream: bool) -> None:
    """What waits to be shipped to the city's centre ([central] in hall.toml)."""
    from . import central_outbox

    if new_stream:
        from .db import DatabaseInUse, DbLock, connect

        lock = DbLock(db)
        try:
            lock.acquire()
        except DatabaseInUse as exc:
            raise click.ClickException(str(exc)) from None
        try:
            wconn = connect(Path(db))
            stream, queued = central_outbox.new_stream(wconn)
            wconn.close()
        finally:
            lock.release()
        click.echo(f"new stream {stream}: {queued} rows queued for the centre")
        return
    conn = _record(db)
    stream = central_outbox.stream(conn)  # type: ignore[arg-type]
    if stream is None:
        click.echo("未接入市级平台 this hall has never shipped to a centre (no [central] yet)")
        return
    waiting, oldest = central_outbox.backlog(conn)  # type: ignore[arg-type]
    if waiting == 0:
        click.echo(f"stream {stream}: 已全部上报 everything is at the centre")
    else:
        click.echo(f"stream {stream}: 待上报 {waiting} rows waiting, the oldest queued {oldest} (UTC)")
