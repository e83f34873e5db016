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


def _connect(dsn: str, *, schema: bool = True):
    """A connection to the central database; unless ``schema`` is False, one at this hallq's schema."""
    if "password=" in dsn or ("://" in dsn and "@" in dsn.split("://", 1)[1].split("/", 1)[0]
                               and ":" in dsn.split("://", 1)[1].split("@", 1)[0]):
        raise click.UsageError("--db must not hold a password: put it in ~/.pgpass or $PGPASSFILE")
    try:
        conn = cdb.connect(dsn, autocommit=True)
    except cdb.CentralDbError as exc:
        raise click.ClickException(str(exc)) from None
    if schema:
        v = cdb.version(conn)
        if v != cdb.VERSION:
            conn.close()
            raise click.ClickException(
                f"the central schema is {v}; this hallq needs {cdb.VERSION}: run hallq central migrate" if v < cdb.VERSION
                else f"the central database was written by a newer hallq (schema {v}; this one knows {cdb.VERSION})")
    return conn


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
    with _connect(ctx.obj["dsn"], schema=False) as conn:
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
@click.option("--name-en", help="The hall's English name (the city dashboard shows it beside the Chinese one).")
@click.option("--timezone", default="Asia/Shanghai", show_default=True,
              help="The hall's time zone ([hall] timezone): its days and half hours in the city's reports.")
@click.pass_context
def hall_add(ctx: click.Context, hall_id: str, name: str, out: str, name_en: str | None, timezone: str) -> None:
    """Accept records from a hall: make its credentials (written once, 0600; only a hash is kept here)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"{timezone!r} is not a time zone (e.g. Asia/Shanghai)",
                                 param_hint="--timezone") from None
    if Path(out).exists():
        raise click.ClickException(f"{out} exists: not overwritten (remove it or choose another --out)")
    with _connect(ctx.obj["dsn"]) as conn:
        try:
            creds = halls.add(conn, hall_id, name)
        except halls.HallError as exc:
            raise click.ClickException(str(exc)) from None
        conn.execute("UPDATE halls SET name_en = %s, timezone = %s WHERE id = %s", (name_en, timezone, hall_id))
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


@command.command()
@click.option("--dir", "folder", required=True, type=click.Path(file_okay=False),
              help="Where to write ca.crt, ca.key, server.crt, server.key (made 0700; keys 0600).")
@click.option("--host", "hosts", multiple=True, required=True,
              help="A name or address the halls reach the centre by (repeat for several).")
def tls(folder: str, hosts: tuple[str, ...]) -> None:
    """The centre's CA and HTTPS server certificate (the CA is kept if the folder has one)."""
    from . import tls as tls_mod

    files = tls_mod.make(folder, list(hosts))
    click.echo(f"server certificate for {', '.join(hosts)} in {files['cert']}; give every hall {files['ca']} "
               "([central] ca in hall.toml)")


def _listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"{value!r}: expected HOST:PORT, e.g. 0.0.0.0:8443", param_hint="--listen")
    return host.strip("[]"), int(port)


@command.command()
@click.option("--listen", default="127.0.0.1:8443", show_default=True, help="HOST:PORT to serve HTTPS on.")
@click.option("--tls-dir", required=True, type=click.Path(file_okay=False, exists=True),
              help="The folder `hallq central tls` wrote (server.crt, server.key).")
@click.option("--pool", default=8, show_default=True, type=click.IntRange(1, 100),
              help="Database connections (batches applied at once).")
@click.option("--haocp-url", help="The province's 好差评 endpoint: upload the ratings of the halls switched to "
              "the centre (hallq central haocp on HALL). Left out: the centre uploads nothing.")
@click.pass_context
def serve(ctx: click.Context, listen: str, tls_dir: str, pool: int, haocp_url: str | None) -> None:
    """The halls' ingest endpoint (HTTPS): POST /v1/ingest; with --haocp-url also the city's 好差评 upload."""
    import uvicorn

    from . import server

    host, port = _listen(listen)
    crt, key = Path(tls_dir) / "server.crt", Path(tls_dir) / "server.key"
    for f in (crt, key):
        if not f.exists():
            raise click.ClickException(f"{f} is missing: make it with hallq central tls --dir {tls_dir} --host ...")
    with _connect(ctx.obj["dsn"]) as conn:
        if cdb.version(conn) != cdb.VERSION:
            raise click.ClickException(f"the central schema is {cdb.version(conn)}, this hallq needs "
                                       f"{cdb.VERSION}: run hallq central migrate")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if haocp_url is not None and not haocp_url.startswith(("http://", "https://")):
        raise click.BadParameter(f"{haocp_url!r} must be an http:// or https:// URL", param_hint="--haocp-url")
    p = server.open_pool(ctx.obj["dsn"], pool)
    uploader = None
    try:
        if haocp_url:
            from .haocp import Uploader

            uploader = Uploader(p, haocp_url).start()
        config = uvicorn.Config(server.build(p), host=host, port=port, ssl_certfile=str(crt), ssl_keyfile=str(key),
                                log_level="warning", access_log=False, lifespan="off",
                                # halls post every few seconds: keep their TLS connections rather than
                                # closing them after uvicorn's default 5 s (and racing their next post)
                                timeout_keep_alive=75)
        click.echo(f"hallq central: serving https://{host}:{port}/v1/ingest", err=True)
        uvicorn.Server(config).run()
    finally:
        if uploader is not None:
            uploader.stop()
        p.close()


@command.command("haocp")
@click.argument("switch", type=click.Choice(["on", "off", "status"]))
@click.argument("hall_id", required=False)
@click.pass_context
def haocp_command(ctx: click.Context, switch: str, hall_id: str | None) -> None:
    """Who uploads a hall's ratings to 好差评: `on HALL` the centre (one province link for the city), `off HALL`
    the hall itself; `status` lists every hall's uploads."""
    from . import haocp

    with _connect(ctx.obj["dsn"]) as conn:
        if switch == "status":
            for hid, central, pending, sent, rejected, left in haocp.summary(conn):
                who = "centre 市级统一上报" if central else "hall 大厅自行上报"
                click.echo(f"{hid}\t{who}\tpending {pending}\tsent {sent}\trejected {rejected}\tby the hall {left}")
            return
        if hall_id is None:
            raise click.UsageError(f"hallq central haocp {switch} HALL")
        try:
            haocp.switch(conn, hall_id, switch == "on")
        except haocp.HaocpError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"hall {hall_id}: 好差评 uploaded by the {'centre' if switch == 'on' else 'hall itself'} "
               "from its next batch on")


def main() -> None:  # pragma: no cover - python -m hallq.central.cli
    command(obj={})


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def _add_web() -> None:
    from .web.cli import command as web  # the city dashboard (hallq.central.web)

    command.add_command(web)


_add_web()
