"""``hallq central``: the city's central database, its halls and its ingest endpoint.

    hallq central migrate                                 # create / upgrade the schema, this month's partitions
    hallq central hall add H1 --name "某某区政务服务中心" --out h1-central.toml   # credentials for the hall (0600)
    hallq central hall rotate H1 --out h1-central.toml    # new credentials, the old ones stop working
    hallq central hall revoke H1
    hallq central hall list
    hallq central tls --dir /etc/hallq/central --host central.example.gov.cn   # CA + server certificate
    hallq central serve --tls-dir /etc/hallq/central --listen 0.0.0.0:8443

The database comes from ``--db`` or ``$HALLQ_CENTRAL_DB``: a libpq connection string or URI *without* a
password (libpq reads the password from ``~/.pgpass`` or ``$PGPASSFILE``, never from the command line).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from . import db as cdb
from . import halls

log = logging.getLogger(__name__)


def _connect(dsn: str):
    if "password=" in dsn or ("://" in dsn and "@" in dsn.split("://", 1)[1].split("/", 1)[0]
                               and ":" in dsn.split("://", 1)[1].split("@", 1)[0]):
        raise click.UsageError("--db must not hold a password: put it in ~/.pgpass or $PGPASSFILE")
    try:
        return cdb.connect(dsn, autocommit=True)
    except cdb.CentralDbError as exc:
        raise click.ClickException(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", "dsn", envvar="HALLQ_CENTRAL_DB", default="dbname=hallq", show_default=True,
              help="The central PostgreSQL (libpq connection string; no password in it).")
@click.pass_context
def command(ctx: click.Context, dsn: str) -> None:
    """The city's central side: every hall's record in one PostgreSQL."""
    ctx.ensure_object(dict)["dsn"] = dsn


@command.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Create or upgrade the central schema (and this month's and next month's partitions)."""
    with _connect(ctx.obj["dsn"]) as conn:
        try:
            before, after = cdb.migrate(conn)
        except cdb.CentralDbError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"central schema {before} -> {after}" if before != after else f"central schema {after}: up to date")


@command.group()
def hall() -> None:
    """The halls that ship their records here, and their credentials."""


def _write(creds: halls.Credentials, out: str) -> None:
    path = creds.write(out)
    click.echo(f"hall {creds.hall}: credentials written to {path} (0600); copy it to the hall's controller and "
               "name it in hall.toml: [central] credentials = \"...\"")


@hall.command("add")
@click.argument("hall_id")
@click.option("--name", required=True, help="The hall's name (中文名).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to write the credentials file.")
@click.pass_context
def hall_add(ctx: click.Context, hall_id: str, name: str, out: str) -> None:
    """Accept records from a hall: make its credentials (written once, 0600; only a hash is kept here)."""
    if Path(out).exists():
        raise click.ClickException(f"{out} exists: not overwritten (remove it or choose another --out)")
    with _connect(ctx.obj["dsn"]) as conn:
        try:
            creds = halls.add(conn, hall_id, name)
        except halls.HallError as exc:
            raise click.ClickException(str(exc)) from None
    _write(creds, out)


@hall.command("rotate")
@click.argument("hall_id")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to write the new credentials.")
@click.pass_context
def hall_rotate(ctx: click.Context, hall_id: str, out: str) -> None:
    """New credentials for a hall; the old ones stop working at once."""
    with _connect(ctx.obj["dsn"]) as conn:
        try:
            creds = halls.rotate(conn, hall_id)
        except halls.HallError as exc:
            raise click.ClickException(str(exc)) from None
    _write(creds, out)


@hall.command("revoke")
@click.argument("hall_id")
@click.pass_context
def hall_revoke(ctx: click.Context, hall_id: str) -> None:
    """Refuse a hall's batches from now on (its records stay)."""
    with _connect(ctx.obj["dsn"]) as conn:
        try:
            halls.revoke(conn, hall_id)
        except halls.HallError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"hall {hall_id}: revoked")


@hall.command("list")
@click.pass_context
def hall_list(ctx: click.Context) -> None:
    """The halls, how many rows each has shipped, and when the last batch came."""
    with _connect(ctx.obj["dsn"]) as conn:
        rows = halls.listing(conn)
    if not rows:
        click.echo("no halls yet: hallq central hall add ID --name NAME --out FILE")
        return
    for hid, name, _created, revoked, acked, last in rows:
        state = f"revoked {revoked:%Y-%m-%d %H:%M}" if revoked else "active"
        seen = f"last batch {last:%Y-%m-%d %H:%M:%S}" if last else "never shipped"
        click.echo(f"{hid}\t{name}\t{state}\t{acked} rows\t{seen}")


def main() -> None:  # pragma: no cover - python -m hallq.central.cli
    command(obj={})


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
