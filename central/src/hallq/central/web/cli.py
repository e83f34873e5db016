"""``hallq central web``: the city dashboard; ``hallq central web user ...``: its accounts (the hall
dashboard's own account commands); ``hallq central web rollup``: roll the record up now."""

from __future__ import annotations

import logging
from pathlib import Path

import click
from hallq.dashboard.cli import _listen, user_group
from hallq.shared.config import BrokerURL, ConfigError

log = logging.getLogger(__name__)

DEFAULT_STATE = "/var/lib/hallq/city-dashboard.db"
DSN_HELP = ("A libpq connection string without a password (libpq reads it from ~/.pgpass or $PGPASSFILE).")


@click.group("web", invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--report-db", "report_dsn", envvar="HALLQ_CENTRAL_REPORT_DB", help="Where the pages read: a hot "
              "standby of the primary `hallq central --db` (default: the primary itself). " + DSN_HELP)
@click.option("--broker", default="mqtt://127.0.0.1:1883", show_default=True, envvar="HALLQ_BROKER",
              help="The city's broker, to which each hall bridges its state topics (mqtt:// or mqtts://; user and "
                   "password from HALLQ_MQTT_USERNAME / HALLQ_MQTT_PASSWORD).")
@click.option("--listen", default="127.0.0.1:8090", show_default=True, help="HOST:PORT to serve on.")
@click.option("--state", default=DEFAULT_STATE, show_default=True, envvar="HALLQ_CITY_STATE",
              type=click.Path(dir_okay=False), help="The city dashboard's own record: accounts, sessions, audit.")
@click.option("--name", default="市政务服务中心", show_default=True, help="The city's name on the pages.")
@click.option("--name-en", default="City service centres", show_default=True, help="The English name.")
@click.option("--timezone", default="Asia/Shanghai", show_default=True, help="The city's time zone.")
@click.option("--rollup-every", default=60.0, show_default=True, type=float,
              help="Seconds between refreshes of the roll-up: the hall-days whose record changed since the last"
                   " one (today's, and an old day a hall sends late); 0: never (use `rollup`).")
@click.option("--secure-cookies", is_flag=True, help="Send cookies only over HTTPS (behind a TLS proxy).")
@click.pass_context
def command(ctx: click.Context, report_dsn: str | None, broker: str, listen: str, state: str,
            name: str, name_en: str, timezone: str, rollup_every: float, secure_cookies: bool) -> None:
    """The city dashboard: every hall live, one hall in detail, cross-hall reports, follow-ups.

    The roll-up writes to the primary (`hallq central --db`); the pages read `--report-db` (a hot standby).
    Accounts first: `hallq central web user add NAME --role manager` (password from standard input).
    """
    ctx.ensure_object(dict)["state"] = state
    dsn = ctx.obj.get("dsn") or "dbname=hallq"
    if ctx.invoked_subcommand is not None:
        return
    for d in (dsn, report_dsn or ""):
        if "password=" in d:
            raise click.UsageError("a connection string must not hold a password: put it in ~/.pgpass or $PGPASSFILE")
    host, port = _listen(listen)
    import psycopg

    from .server import Server

    try:
        server = Server.build(dsn=dsn, report_dsn=report_dsn, broker=BrokerURL.parse(broker), state=Path(state),
                              name=name, name_en=name_en, timezone=timezone, rollup_every=rollup_every,
                              secure_cookies=secure_cookies)
    except psycopg.Error as exc:
        raise click.ClickException(f"cannot use the central database: {str(exc).strip().splitlines()[0]}") from None
    except (ConfigError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    if not server.accounts.users():
        click.echo(f"no account yet: add one with `hallq central web --state {state} user add NAME --role manager`",
                   err=True)
    server.serve(host, port)


command.add_command(user_group)


@command.command("rollup")
@click.pass_context
def rollup_cmd(ctx: click.Context) -> None:
    """Roll up every hall-day whose record grew since the last roll-up (all of them the first time)."""
    import psycopg

    from . import figures

    dsn = ctx.obj.get("dsn") or "dbname=hallq"
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            done = figures.catch_up(conn)
    except psycopg.Error as exc:
        raise click.ClickException(f"cannot roll up: {str(exc).strip().splitlines()[0]}") from None
    click.echo(f"rolled up {len(done)} day(s), {sum(done.values())} rows" if done else
               "nothing new to roll up (or another roll-up is running)")
