"""``hallq dashboard``: the hall's web pages, and (``hallq dashboard user ...``) their accounts."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from hallq.shared.config import BrokerURL, ConfigError

log = logging.getLogger(__name__)

DEFAULT_STATE = "/var/lib/hallq/dashboard.db"


def _listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"{value!r}: expected HOST:PORT, e.g. 0.0.0.0:8080", param_hint="--listen")
    return host.strip("[]"), int(port)


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="The hall config (TOML).")
@click.option("--broker", default="mqtt://127.0.0.1:1883", show_default=True, envvar="HALLQ_BROKER",
              help="mqtt://[user[:password]@]host[:port] or mqtts://...; user and password may also come from "
                   "HALLQ_MQTT_USERNAME / HALLQ_MQTT_PASSWORD.")
@click.option("--db", type=click.Path(dir_okay=False), help="The controller's SQLite record (opened read-only "
              "for the day's figures and reports; follow-ups are closed through the controller's own function).")
@click.option("--listen", default="127.0.0.1:8080", show_default=True, help="HOST:PORT to serve on "
              "(0.0.0.0:8080 for the hall's LAN).")
@click.option("--state", default=DEFAULT_STATE, show_default=True, envvar="HALLQ_DASHBOARD_STATE",
              type=click.Path(dir_okay=False), help="The dashboard's own record: accounts, sessions, audit log.")
@click.option("--secure-cookies", is_flag=True, help="Send cookies only over HTTPS (behind a TLS proxy).")
@click.option("--device", type=click.Path(dir_okay=False), help="The dashboard's own identity: the device.toml of "
              "its provisioning bundle (role dashboard); its broker address and credentials replace --broker.")
@click.option("--callers", "callers_dir", type=click.Path(file_okay=False), help="A folder of the web callers' "
              "bundles (web-caller-3/device.toml, ...; also the scan-to-take kiosk's, [follow] take_client): each "
              "goes out under its own identity. Default: identities/ beside --device's device.toml when it exists; "
              "without any, window n's web caller is client web-caller-n on the dashboard's (open) broker.")
@click.pass_context
def command(ctx: click.Context, config_path: str | None, broker: str, db: str | None, listen: str, state: str,
            secure_cookies: bool, device: str | None, callers_dir: str | None) -> None:
    """The hall's web pages: the manager's live dashboard and the clerk's web caller.

    Accounts first: `hallq dashboard user add NAME --role manager` (the password is read from standard input).
    """
    ctx.ensure_object(dict)["state"] = state
    if ctx.invoked_subcommand is not None:
        return
    if config_path is None:
        raise click.UsageError("--config is needed to run the dashboard")
    host, port = _listen(listen)
    from .server import Server

    try:
        server = Server.build(config_path=config_path, broker=BrokerURL.parse(broker),
                              db=Path(db) if db else None, state=Path(state), secure_cookies=secure_cookies,
                              device=Path(device) if device else None,
                              callers_dir=Path(callers_dir) if callers_dir else None)
    except (ConfigError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    if not server.accounts.users():
        click.echo(f"no account yet: add one with `hallq dashboard --state {state} user add NAME --role manager`",
                   err=True)
    server.serve(host, port)


@command.group("user")
def user_group() -> None:
    """Accounts: add, list, remove, set a password."""


def _accounts(ctx: click.Context):  # type: ignore[no-untyped-def]
    from .accounts import Accounts

    state = ctx.find_object(dict)["state"]
    try:
        return Accounts(state)
    except OSError as exc:
        raise click.ClickException(f"{state}: {exc.strerror}") from None


def _read_password() -> str:
    if sys.stdin.isatty():
        return click.prompt("password", hide_input=True, confirmation_prompt=True)
    line = sys.stdin.readline()
    if not line:
        raise click.ClickException("no password on standard input")
    return line.rstrip("\r\n")


@user_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["manager", "clerk", "viewer"]), required=True)
@click.option("--windows", default="", help="For clerks: the windows they may use, e.g. 1,2,7.")
@click.option("--display-name", help="The name shown on the pages and recorded as the clerk (default: NAME).")
@click.pass_context
def user_add(ctx: click.Context, name: str, role: str, windows: str, display_name: str | None) -> None:
    """Add an account; its password is read from standard input (asked twice on a terminal)."""
    from .accounts import AccountError

    try:
        wins = [int(w) for w in windows.replace(" ", "").split(",") if w]
    except ValueError:
        raise click.BadParameter(f"{windows!r}: window numbers separated by commas", param_hint="--windows") from None
    password = _read_password()
    acc = _accounts(ctx)
    try:
        u = acc.add_user(name, role, password, display_name=display_name, windows=wins, now=datetime.now(UTC))
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        acc.close()
    where = f", windows {', '.join(map(str, u.windows))}" if u.windows else ""
    click.echo(f"added {u.name} ({u.role}{where})")


@user_group.command("passwd")
@click.argument("name")
@click.pass_context
def user_passwd(ctx: click.Context, name: str) -> None:
    """Set an account's password (from standard input); its sessions end."""
    from .accounts import AccountError

    password = _read_password()
    acc = _accounts(ctx)
    try:
        acc.set_password(name, password)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        acc.close()
    click.echo(f"password of {name} changed; its sessions have ended")


@user_group.command("remove")
@click.argument("name")
@click.pass_context
def user_remove(ctx: click.Context, name: str) -> None:
    """Remove an account (its sessions end at once)."""
    from .accounts import AccountError

    acc = _accounts(ctx)
    try:
        acc.remove_user(name)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        acc.close()
    click.echo(f"removed {name}")


@user_group.command("list")
@click.pass_context
def user_list(ctx: click.Context) -> None:
    """The accounts."""
    acc = _accounts(ctx)
    try:
        for u in acc.users():
            wins = f"  windows {','.join(map(str, u.windows))}" if u.windows else ""
            click.echo(f"{u.name:<20} {u.role:<8} {u.display_name}{wins}")
    finally:
        acc.close()


@command.command("central")
@click.pass_context
def central_command(ctx: click.Context) -> None:
    """What of the follow-ups' notes waits to be shipped to the city's centre ([central] in the hall config)."""
    import sqlite3

    from . import notes_outbox

    state = ctx.find_object(dict)["state"]
    if not Path(state).is_file():
        raise click.ClickException(f"{state}: no dashboard record there (--state)")
    conn = sqlite3.connect(f"file:{state}?mode=ro", uri=True)
    try:
        try:
            stream = notes_outbox.stream(conn)
            waiting, oldest = notes_outbox.backlog(conn) if stream else (0, None)
        except sqlite3.OperationalError:  # a dashboard record from before the notes were shipped
            stream = None
    finally:
        conn.close()
    if stream is None:
        click.echo("未接入市级平台 the follow-ups' notes have never been shipped (no [central] yet)")
    elif waiting == 0:
        click.echo(f"stream {stream}: 已全部上报 every note is at the centre")
    else:
        click.echo(f"stream {stream}: 待上报 {waiting} notes waiting, the oldest queued {oldest} (UTC)")
