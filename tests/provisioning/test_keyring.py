"""`init`, `bundle`, `revoke`/`rotate` and `list` on the files: modes, idempotence, bad input."""

from __future__ import annotations

import hashlib
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hallq.provisioning import pki
from hallq.provisioning.bundle import Extras, bundle_files, write_bundle
from hallq.provisioning.files import ProvisionError
from hallq.provisioning.keyring import Keyring
from hallq.shared.config import ConfigError
from hallq.shared.identity import load_identity
from provkit import hall_toml, make_keyring

HALLQ = str(Path(sys.executable).parent / "hallq")


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    return {p.relative_to(folder).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), stat.S_IMODE(p.stat().st_mode))
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_init_makes_a_private_keyring(tmp_path):
    kr = make_keyring(tmp_path)
    assert stat.S_IMODE(kr.path.stat().st_mode) == 0o700
    for secret in ("ca.key", "kiosk.key", "follow.key", "keyring.toml", "broker/passwd", "broker/server.key",
                   *(f"credentials/{d}" for d in ("kiosk-1", "window-1", "pad-1", "display-hall", "controller",
                                                  "dashboard"))):
        assert stat.S_IMODE((kr.path / secret).stat().st_mode) == 0o600, secret
    for d in ("credentials", "broker"):
        assert stat.S_IMODE((kr.path / d).stat().st_mode) == 0o700
    conf = (kr.broker_dir / "mosquitto.conf").read_text()
    for line in ("allow_anonymous false", "use_username_as_clientid true", "password_file", "acl_file", "certfile"):
        assert line in conf
    acl = (kr.broker_dir / "acl").read_text()
    assert "pattern write hallq/t1/device/%u/status" in acl and "user kiosk-1" in acl
    # the broker certificate carries the controller's names and is signed by the hall CA
    cert = pki.load_cert((kr.broker_dir / "server.crt").read_bytes())
    assert {"127.0.0.1", "hallq-controller.local", "localhost"} <= set(pki.cert_names(cert))
    ca = pki.load_cert(kr.ca_file.read_bytes())
    cert.verify_directly_issued_by(ca)
    assert pki.ca_hall(ca) == "t1"
    # openssl agrees the chain is good for the controller's name
    subprocess.run(["openssl", "verify", "-CAfile", str(kr.ca_file), "-verify_hostname", "hallq-controller.local",
                    str(kr.broker_dir / "server.crt")], check=True, capture_output=True)


def test_init_again_changes_nothing_and_adds_only_new_devices(tmp_path):
    kr = make_keyring(tmp_path)
    cfg = tmp_path / "hall-t1.toml"
    before = snapshot(kr.path)
    old_hashes = dict(line.split(":", 1) for line in (kr.broker_dir / "passwd").read_text().splitlines())
    r = kr.init(cfg)
    assert r.added == [] and not r.created_keyring
    assert snapshot(kr.path) == before
    port = kr.inventory().broker.port
    cfg.write_text(hall_toml(port, extra_devices='\n[[devices]]\nid = "kiosk-2"\nrole = "kiosk"\n'))
    r = kr.init(cfg)
    assert r.added == ["kiosk-2"]
    after = snapshot(kr.path)
    changed = {k for k in after if before.get(k) != after[k]}
    assert changed == {"credentials/kiosk-2", "hall.toml", "keyring.toml", "broker/passwd", "broker/acl"}
    passwd = dict(line.split(":", 1) for line in (kr.broker_dir / "passwd").read_text().splitlines())
    assert set(passwd) == {*old_hashes, "kiosk-2"}
    assert {u: passwd[u] for u in old_hashes} == old_hashes, "an old device's credential changed"


def test_init_refuses_another_halls_keyring_and_changes_nothing(tmp_path):
    kr = make_keyring(tmp_path)
    before = snapshot(kr.path)
    other = tmp_path / "other.toml"
    other.write_text(hall_toml(1883, hall="other"))
    with pytest.raises(ProvisionError, match="keyring of hall 't1'"):
        kr.init(other)
    assert snapshot(kr.path) == before


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace('[broker]\nhost = "127.0.0.1"', '[nobroker]\nhost = "127.0.0.1"'), "no \\[broker\\] section"),
    (lambda t: t.replace('role = "pad"', 'role = "printer"'), "devices\\[3\\].role"),
    (lambda t: t.replace('id = "pad-1"\nrole = "pad"\nwindow = 1', 'id = "pad-1"\nrole = "pad"\nwindow = 9'),
     "unknown window 9"),
    (lambda t: t.replace('id = "pad-1"', 'id = "kiosk-1"'), "already devices\\[0\\]"),
    (lambda t: t.replace('id = "pad-1"', 'id = "controller"'), "hall's own controller identity"),
    (lambda t: t.replace('mode = "window"\nwindow = 2', 'mode = "window"'), "window mode needs `window`"),
    (lambda t: t.replace('host = "127.0.0.1"', 'host = "not a host!"'), "broker.host"),
    (lambda t: t.replace('[[devices]]\nid = "kiosk-1"\nrole = "kiosk"', '[[devices]]\nid = "kiosk-1"\nrole = "kiosk"\ncolour = 1'),
     "colour"),
])
def test_init_refuses_a_bad_hall_toml_naming_the_key(tmp_path, edit, message):
    cfg = tmp_path / "hall.toml"
    cfg.write_text(edit(hall_toml(18883)))
    kr = Keyring(tmp_path / "kr")
    with pytest.raises((ProvisionError, ConfigError), match=message):
        kr.init(cfg)
    assert not kr.path.exists() or not any(kr.path.iterdir())


def test_init_refuses_a_folder_that_is_not_a_keyring(tmp_path):
    (tmp_path / "kr").mkdir()
    (tmp_path / "kr" / "notes.txt").write_text("mine")
    cfg = tmp_path / "hall.toml"
    cfg.write_text(hall_toml(18883))
    with pytest.raises(ProvisionError, match="not a hallq keyring"):
        Keyring(tmp_path / "kr").init(cfg)
    assert sorted(p.name for p in (tmp_path / "kr").iterdir()) == ["notes.txt"]


def test_bundles_of_every_role(tmp_path):
    kr = make_keyring(tmp_path)
    port = kr.inventory().broker.port
    from hallq.call_display.config import load as load_display
    from hallq.kiosk.config import load as load_kiosk
    from hallq.rating_pad.config import load as load_pad

    expect = {"kiosk-1": ("kiosk.toml", load_kiosk), "window-1": ("display.toml", load_display),
              "display-hall": ("display.toml", load_display), "display-2": ("display.toml", load_display),
              "pad-1": ("pad.toml", load_pad), "controller": ("hall.toml", None), "dashboard": (None, None)}
    for dev, (cfg_name, loader) in expect.items():
        out = tmp_path / "bundles" / dev
        write_bundle(bundle_files(kr, dev), out)
        assert stat.S_IMODE(out.stat().st_mode) == 0o700
        assert stat.S_IMODE((out / "device.toml").stat().st_mode) == 0o600
        ident = load_identity(out / "device.toml")
        assert ident.device == dev and ident.hall == "t1" and ident.broker.tls
        assert ident.broker.username == dev and ident.broker.password == kr.password(dev)
        assert Path(ident.broker.ca_file).read_bytes() == kr.ca_file.read_bytes()
        assert (ident.kiosk_key_file is not None) == (dev == "kiosk-1")
        assert "password" not in repr(ident) and kr.password(dev) not in repr(ident)
        if dev == "controller":
            assert ident.broker.host == "127.0.0.1" and ident.broker.port == port
            assert {p.name for p in (out / "broker").iterdir()} == {"mosquitto.conf", "passwd", "acl", "ca.crt",
                                                                     "server.crt", "server.key"}
        else:
            assert ident.broker.port == port
        if loader is not None:
            cfg = loader(out / cfg_name)
            assert ident.config_file == out / cfg_name
            if dev.startswith(("window", "display")):
                assert cfg.client_id == dev
            if dev == "window-1":
                assert cfg.display.mode == "window" and cfg.display.window == 1 and cfg.caller.device_id == dev
            if dev == "display-2":
                assert cfg.display.mode == "window" and cfg.display.window == 2 and cfg.caller is None
            if dev == "pad-1":
                assert cfg.client_id == "pad-1" and cfg.pad.window == 1
        assert ("kiosk.key" in {p.name for p in out.iterdir()}) == (dev == "kiosk-1"), "the kiosk key left kiosks"
        has_follow = (out / "follow.key").exists()
        assert has_follow == (dev in ("controller", "dashboard")), dev
        if has_follow:
            assert (out / "follow.key").read_bytes() == kr.follow_key_file.read_bytes()
            assert stat.S_IMODE((out / "follow.key").stat().st_mode) == 0o600


def test_bundle_extras_and_their_refusals(tmp_path):
    kr = make_keyring(tmp_path)
    files = bundle_files(kr, "pad-1", Extras(wifi_ssid="hall-devices", wifi_psk="correct horse",
                                              ssh_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE tech@laptop\n"))
    assert files["wifi.toml"][1] == 0o600 and b'ssid = "hall-devices"' in files["wifi.toml"][0]
    assert files["authorized_keys"][0].startswith(b"ssh-ed25519 ")
    with pytest.raises(ProvisionError, match="psk-file"):
        bundle_files(kr, "pad-1", Extras(wifi_ssid="x"))
    with pytest.raises(ProvisionError, match="8 to 63"):
        bundle_files(kr, "pad-1", Extras(wifi_ssid="x", wifi_psk="short"))
    with pytest.raises(ProvisionError, match="public key"):
        bundle_files(kr, "pad-1", Extras(ssh_key="-----BEGIN OPENSSH PRIVATE KEY-----"))


def test_bundle_refuses_unknown_missing_and_revoked_devices(tmp_path):
    kr = make_keyring(tmp_path)
    with pytest.raises(ProvisionError, match="unknown device 'kiosk-9'"):
        bundle_files(kr, "kiosk-9")
    # a device taken out of hall.toml (init again) keeps its record but gets no bundle
    cfg = tmp_path / "hall-t1.toml"
    cfg.write_text(cfg.read_text().replace('[[devices]]\nid = "pad-1"\nrole = "pad"\nwindow = 1\n', ""))
    r = kr.init(cfg)
    assert r.not_in_hall == ["pad-1"]
    with pytest.raises(ProvisionError, match=r"no longer in the hall's hall\.toml"):
        bundle_files(kr, "pad-1")
    kr.revoke("kiosk-1")
    with pytest.raises(ProvisionError, match="revoked"):
        bundle_files(kr, "kiosk-1")
    assert "user kiosk-1" not in (kr.broker_dir / "acl").read_text()
    assert "kiosk-1:" not in (kr.broker_dir / "passwd").read_text()
    # init does not bring a revoked device back; rotate does
    kr.init(cfg)
    assert not kr.load().devices["kiosk-1"].active
    kr.rotate("kiosk-1")
    assert kr.load().devices["kiosk-1"].active and "user kiosk-1" in (kr.broker_dir / "acl").read_text()


def test_write_bundle_never_half_replaces(tmp_path):
    kr = make_keyring(tmp_path)
    out = tmp_path / "b"
    write_bundle(bundle_files(kr, "kiosk-1"), out)
    with pytest.raises(ProvisionError, match="exists"):
        write_bundle(bundle_files(kr, "kiosk-1"), out)
    write_bundle(bundle_files(kr, "window-1"), out, force=True)
    assert load_identity(out / "device.toml").device == "window-1"
    assert not (out / "kiosk.key").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".b")] == []


def test_identity_refuses_what_it_cannot_trust(tmp_path):
    kr = make_keyring(tmp_path)
    out = tmp_path / "b"
    write_bundle(bundle_files(kr, "kiosk-1"), out)
    dev = out / "device.toml"
    dev.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_identity(dev)
    dev.chmod(0o600)
    text = dev.read_text()
    dev.write_text(text.replace('username = "kiosk-1"', 'username = "window-1"'))
    with pytest.raises(ConfigError, match="must be the device id"):
        load_identity(dev)
    dev.write_text(text + "colour = 1\n")
    with pytest.raises(ConfigError, match="colour"):
        load_identity(dev)
    dev.write_text(text)
    (out / "ca.crt").unlink()
    with pytest.raises(ConfigError, match="ca:"):
        load_identity(dev)


def test_the_command_line(tmp_path):
    cfg = tmp_path / "hall.toml"
    cfg.write_text(hall_toml(18883))
    kr = tmp_path / "kr"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([HALLQ, "provision", *args], capture_output=True, text=True, timeout=60)

    p = run("init", "--hall-config", str(cfg), "--keyring", str(kr))
    assert p.returncode == 0, p.stderr
    assert "controller, dashboard" in p.stdout
    p = run("list", "--keyring", str(kr))
    assert p.returncode == 0 and "display-2" in p.stdout and "window" in p.stdout
    p = run("bundle", "nobody", "--keyring", str(kr), "--out", str(tmp_path / "x"))
    assert p.returncode == 1 and "unknown device 'nobody'" in p.stderr and not (tmp_path / "x").exists()
    p = run("revoke", "kiosk-1", "--keyring", str(kr))
    assert p.returncode == 0
    p = run("list", "--keyring", str(kr))
    assert "revoked" in p.stdout
    p = run("bundle", "kiosk-1", "--keyring", str(tmp_path / "nope"), "--out", str(tmp_path / "y"))
    assert p.returncode == 1 and "no such keyring" in p.stderr
    # no secret ever on the command line or in what it prints
    password = (kr / "credentials" / "window-1").read_text().strip()
    p = run("bundle", "window-1", "--keyring", str(kr), "--out", str(tmp_path / "w1"))
    assert p.returncode == 0 and password not in p.stdout + p.stderr


def test_apply_refuses_the_keyring_of_another_hall_and_installs_nothing(tmp_path):
    from hallq.provisioning.apply import apply

    kr = make_keyring(tmp_path)
    other = make_keyring(tmp_path, hall="other")
    to, conf = tmp_path / "inst", tmp_path / "conf.d" / "hallq.conf"
    r = apply(kr.path, to, conf, systemd=False)
    assert set(r.changed) == {"ca.crt", "server.crt", "server.key", "passwd", "acl", "hallq.conf"}
    assert "installed" in r.how
    before = snapshot(to)
    with pytest.raises(ProvisionError, match="serves hall 't1'"):
        apply(other.path, to, conf, systemd=False)
    assert snapshot(to) == before
    assert apply(kr.path, to, conf, systemd=False).how == "nothing to do"
