"""``hallq provision``: the technician's commands (on a Linux laptop, or on the controller)."""

from __future__ import annotations

from pathlib import Path

import click

from .files import ProvisionError

KEYRING_HELP = "The hall's keyring directory (made by init; keep it private)."


def _keyring(path: str):
    from .keyring import Keyring

    return Keyring(path)


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@click.group("provision", context_settings={"help_option_names": ["-h", "--help"]})
def command() -> None:
    """Every device of a hall its own identity, and a broker that enforces who may say what.

    \b
    hallq provision init --hall-config hall.toml --keyring ~/hall-keyring
    hallq provision bundle kiosk-1 --keyring ~/hall-keyring --out kiosk-1/
    hallq provision flash kiosk-1 --keyring ~/hall-keyring --image hallq-kiosk.img.zst --to /dev/sdX
    hallq provision revoke kiosk-1 --keyring ~/hall-keyring   (then `apply` on the controller)
    """


@command.command()
@click.option("--hall-config", required=True, type=click.Path(dir_okay=False), help="The hall's hall.toml.")
@click.option("--keyring", required=True, type=click.Path(file_okay=False), help=KEYRING_HELP)
def init(hall_config: str, keyring: str) -> None:
    """Make the hall's keyring, or add the devices that are new in hall.toml (nothing else changes)."""
    kr = _keyring(keyring)
    try:
        r = kr.init(hall_config)
    except ProvisionError as exc:
        raise _fail(exc) from None
    rec = kr.load()
    click.echo(f"{'made' if r.created_keyring else 'updated'} the keyring of hall {rec.hall} in {kr.path}")
    if r.added:
        click.echo(f"  new identities: {', '.join(r.added)}")
    if r.kept and not r.created_keyring:
        click.echo(f"  unchanged: {', '.join(r.kept)}")
    if r.not_in_hall:
        click.echo(f"  in the keyring but no longer in hall.toml: {', '.join(r.not_in_hall)} "
                   "(revoke them to lock them out)")
    if r.server_cert_remade:
        click.echo("  the broker's host names changed: made a new broker certificate (same CA); "
                   "run `apply` on the controller and make new bundles (the broker address is in them)")
    click.echo(f"  broker files: {kr.broker_dir}/ (install them on the controller: hallq provision apply)")


def _extras(wifi_ssid: str | None, wifi_psk_file: str | None, wifi_country: str, ssh_key: str | None):
    from .bundle import Extras

    psk = None
    if wifi_psk_file:
        try:
            psk = Path(wifi_psk_file).read_text("utf-8").strip()
        except OSError as exc:
            raise click.ClickException(f"{wifi_psk_file}: cannot read: {exc.strerror}") from None
    key = None
    if ssh_key:
        try:
            key = Path(ssh_key).read_text("utf-8")
        except OSError as exc:
            raise click.ClickException(f"{ssh_key}: cannot read: {exc.strerror}") from None
    return Extras(wifi_ssid=wifi_ssid, wifi_psk=psk, wifi_country=wifi_country, ssh_key=key)


def extras_options(f):
    f = click.option("--ssh-key", type=click.Path(dir_okay=False), help="An SSH public key file to let in.")(f)
    f = click.option("--wifi-country", default="CN", show_default=True, help="Wi-Fi regulatory country.")(f)
    f = click.option("--wifi-psk-file", type=click.Path(dir_okay=False),
                     help="A file holding the Wi-Fi passphrase (never given on the command line).")(f)
    f = click.option("--wifi-ssid", help="The Wi-Fi network the device joins.")(f)
    return f


@command.command()
@click.argument("device")
@click.option("--keyring", required=True, type=click.Path(file_okay=False), help=KEYRING_HELP)
@click.option("--out", required=True, type=click.Path(), help="The bundle folder to make.")
@click.option("--force", is_flag=True, help="Replace the folder if it exists.")
@extras_options
def bundle(device: str, keyring: str, out: str, force: bool, wifi_ssid, wifi_psk_file, wifi_country, ssh_key) -> None:
    """Write DEVICE's bundle (device.toml, ca.crt, its role's config) as a folder."""
    from .bundle import bundle_files, write_bundle

    try:
        files = bundle_files(_keyring(keyring), device, _extras(wifi_ssid, wifi_psk_file, wifi_country, ssh_key))
        write_bundle(files, Path(out), force=force)
    except ProvisionError as exc:
        raise _fail(exc) from None
    click.echo(f"{out}: the bundle of {device} ({', '.join(sorted(files))})")


@command.command()
@click.argument("device")
@click.option("--keyring", required=True, type=click.Path(file_okay=False), help=KEYRING_HELP)
@click.option("--to", "target", required=True, type=click.Path(), help="A card (/dev/sdX) or an image file (.img).")
@extras_options
def card(device: str, keyring: str, target: str, wifi_ssid, wifi_psk_file, wifi_country, ssh_key) -> None:
    """Write DEVICE's bundle into hallq/ on the FAT boot partition of a flashed card or an image; verify it."""
    from .bundle import bundle_files
    from .card import write_card

    try:
        files = bundle_files(_keyring(keyring), device, _extras(wifi_ssid, wifi_psk_file, wifi_country, ssh_key))
        write_card(files, Path(target))
    except ProvisionError as exc:
        raise _fail(exc) from None
    click.echo(f"{target}: hallq/ holds the bundle of {device}, read back and verified")


@command.command()
@click.argument("device")
@click.option("--keyring", required=True, type=click.Path(file_okay=False), help=KEYRING_HELP)
@click.option("--image", required=True, type=click.Path(dir_okay=False), help="hallq-<role>.img[.zst] (with its .bmap).")
@click.option("--to", "target", required=True, type=click.Path(), help="The card: a whole disk, e.g. /dev/sdb.")
@extras_options
def flash(device: str, keyring: str, image: str, target: str, wifi_ssid, wifi_psk_file, wifi_country, ssh_key) -> None:
    """Write the role's image onto a card, then DEVICE's bundle; read both back."""
    from .bundle import bundle_files
    from .flash import flash as do_flash

    kr = _keyring(keyring)
    try:
        role = kr.device(device).role
        files = bundle_files(kr, device, _extras(wifi_ssid, wifi_psk_file, wifi_country, ssh_key))
        times = do_flash(files, Path(image), Path(target), role, log=lambda m: click.echo(f"  {m}"))
    except ProvisionError as exc:
        raise _fail(exc) from None
    click.echo(f"{target}: {device} ({role}) of hall {kr.load().hall} is ready: image {times['image']:.0f} s, "
               f"read back {times['verify']:.0f} s, bundle {times['bundle']:.1f} s; {times['total']:.0f} s in all")


def _firmware_default() -> Path | None:
    """The pad firmware of this source tree (rating-pad/firmware), when provisioning runs from one."""
    import hallq.provisioning

    here = Path(hallq.provisioning.__file__).resolve().parents[4] / "rating-pad" / "firmware"
    return here if (here / "picopad.py").is_file() else None


def _pins(text: str, what: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"{text!r}: GPIO numbers separated by commas", param_hint=what) from None


@command.command()
@click.argument("device")
@click.option("--keyring", required=True, type=click.Path(file_okay=False), help=KEYRING_HELP)
@click.option("--port", required=True, help="The Pico W's serial port, e.g. /dev/ttyACM0.")
@click.option("--wifi-ssid", required=True, help="The Wi-Fi network the pad joins.")
@click.option("--wifi-psk-file", required=True, type=click.Path(dir_okay=False),
              help="A file holding the Wi-Fi passphrase (never given on the command line).")
@click.option("--buttons", default="2,3,4,5,6", show_default=True, help="The five buttons' GPIOs, 非常满意 first.")
@click.option("--leds", default="16,17,18,19,20", show_default=True, help="The five LEDs' GPIOs, or '' for none.")
@click.option("--firmware", type=click.Path(file_okay=False, path_type=Path),
              help="The pad firmware folder, installed when the board lacks it (default: this tree's "
                   "rating-pad/firmware).")
def pico(device: str, keyring: str, port: str, wifi_ssid: str, wifi_psk_file: str, buttons: str, leds: str,
         firmware: Path | None) -> None:
    """Write a Pico W pad's pad.json (its credentials, TLS with the hall's CA) and read it back."""
    from .pico import pad_files, write_pico

    extras = _extras(wifi_ssid, wifi_psk_file, "CN", None)
    try:
        files = pad_files(_keyring(keyring), device, ssid=wifi_ssid, psk=extras.wifi_psk or "",
                          buttons=_pins(buttons, "--buttons"), leds=_pins(leds, "--leds"))
        installed = write_pico(port, files, firmware=firmware or _firmware_default())
    except ProvisionError as exc:
        raise _fail(exc) from None
    what = "the firmware, " if installed else ""
    click.echo(f"{port}: {device} has {what}pad.json and ca.der, read back and verified; it restarts now")


@command.command()
@click.argument("device")
@click.option("--keyring", required=True, type=click.Path(file_okay=False), help=KEYRING_HELP)
def revoke(device: str, keyring: str) -> None:
    """Remove DEVICE's credential from the broker files (then `apply` on the controller)."""
    try:
        _keyring(keyring).revoke(device)
    except ProvisionError as exc:
        raise _fail(exc) from None
    click.echo(f"{device}: revoked; run `hallq provision apply` on the controller to lock it out now")


@command.command()
@click.argument("device")
@click.option("--keyring", required=True, type=click.Path(file_okay=False), help=KEYRING_HELP)
def rotate(device: str, keyring: str) -> None:
    """Give DEVICE a new credential (a revoked device comes back with it); then `apply` and a new bundle."""
    try:
        _keyring(keyring).rotate(device)
    except ProvisionError as exc:
        raise _fail(exc) from None
    click.echo(f"{device}: new credential; run `hallq provision apply` on the controller and give the device "
               "its new bundle (card or bundle)")


@command.command()
@click.option("--from", "src", default="/etc/hallq", show_default=True, type=click.Path(file_okay=False),
              help="A keyring, or the controller's installed bundle (both hold broker/).")
@click.option("--to", "to", default="/etc/mosquitto/hallq", show_default=True, type=click.Path(file_okay=False),
              help="Where Mosquitto's files go.")
@click.option("--conf", default="/etc/mosquitto/conf.d/hallq.conf", show_default=True,
              type=click.Path(dir_okay=False), help="Where the mosquitto.conf drop-in goes.")
@click.option("--pid", type=int, help="Mosquitto's process id (otherwise systemd's mosquitto service).")
@click.option("--pid-file", type=click.Path(dir_okay=False), help="A file holding Mosquitto's process id.")
def apply(src: str, to: str, conf: str, pid: int | None, pid_file: str | None) -> None:
    """Install the broker files and make Mosquitto reload them (revoked devices are cut off)."""
    from .apply import apply as do_apply

    try:
        r = do_apply(Path(src), Path(to), Path(conf), pid=pid, pid_file=Path(pid_file) if pid_file else None)
    except (ProvisionError, PermissionError) as exc:
        raise _fail(exc) from None
    what = ", ".join(r.changed) if r.changed else "no file changed"
    click.echo(f"{r.to}: {what}; {r.how}")


@command.command("list")
@click.option("--keyring", required=True, type=click.Path(file_okay=False), help=KEYRING_HELP)
def list_(keyring: str) -> None:
    """The devices of the keyring: role, window, when provisioned, rotated or revoked."""
    kr = _keyring(keyring)
    try:
        rec = kr.load()
        inv = kr.inventory()
    except ProvisionError as exc:
        raise _fail(exc) from None
    listed = {d.id for d in inv.devices} | {"controller", "dashboard"}
    rows = [("device", "role", "window", "provisioned", "rotated", "state")]
    for d in sorted(rec.devices.values(), key=lambda d: (d.role, d.id)):
        where = str(d.window or "") + (f" ({d.mode})" if d.mode else "")
        state = f"revoked {d.revoked}" if d.revoked else ("active" if d.id in listed else "active, not in hall.toml")
        rows.append((d.id, d.role, where, d.provisioned, d.rotated or "", state))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    click.echo(f"hall {rec.hall}: {len(rec.devices)} identities ({kr.path})")
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
