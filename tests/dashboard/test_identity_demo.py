"""The web callers' identities from provisioning bundles, and the dashboard in ``make demo``."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dashkit import HALL_TOML
from hallq.controller import config
from hallq.dashboard.accounts import Accounts
from hallq.dashboard.server import caller_identity, load_callers
from hallq.shared.config import BrokerURL, ConfigError
from hallq.shared.demo import DemoContext


def _bundle(folder: Path, device: str, role: str = "window", hall: str = "web") -> None:
    folder.mkdir(parents=True)
    (folder / "ca.crt").write_text("not used here\n")
    f = folder / "device.toml"
    f.write_text(f'device = "{device}"\nrole = "{role}"\nhall = "{hall}"\nbroker = "mqtts://hall.local:8883"\n'
                 f'username = "{device}"\npassword = "secret-of-{device}"\n')
    os.chmod(f, 0o600)


def test_web_callers_from_bundles(tmp_path):
    cfg = config.parse(HALL_TOML)
    _bundle(tmp_path / "web-caller-3", "web-caller-3")
    found = load_callers(tmp_path, cfg)
    assert list(found) == [3] and found[3].client_id == "web-caller-3"
    assert found[3].broker.username == "web-caller-3" and found[3].broker.tls
    assert caller_identity(cfg, BrokerURL.parse("mqtt://x"), 3, found).client_id == "web-caller-3"
    with pytest.raises(ConfigError, match="window 1 has no web caller bundle"):
        caller_identity(cfg, BrokerURL.parse("mqtt://x"), 1, found)
    # without bundles: web-caller-{n}, which must be in [[devices]]
    assert caller_identity(cfg, BrokerURL.parse("mqtt://x"), 2).client_id == "web-caller-2"
    bad = config.parse(HALL_TOML.replace('id = "web-caller-2"', 'id = "caller-2"'))
    with pytest.raises(ConfigError, match="web-caller-2"):
        caller_identity(bad, BrokerURL.parse("mqtt://x"), 2)
    # a bundle of the wrong role, of another hall, or not listed: refused by name
    for name, device, role, hall in (("a", "pad-3", "pad", "web"), ("b", "web-caller-1", "window", "other"),
                                     ("c", "web-caller-9", "window", "web")):
        other = tmp_path / f"bad-{name}"
        _bundle(other / device, device, role, hall)
        with pytest.raises(ConfigError):
            load_callers(other, cfg)


def test_the_dashboard_joins_the_demo_with_a_made_up_password(tmp_path):
    from hallq.dashboard.demo import participants

    hall = tmp_path / "hall.toml"
    hall.write_text(HALL_TOML, encoding="utf-8")
    ctx = DemoContext(hall="web", broker="mqtt://127.0.0.1:1", out_dir=tmp_path / "out", headless=True,
                      windows=(1, 2, 3), secret_file=tmp_path / "k", config=hall)
    [p] = participants(ctx)
    pw_file = tmp_path / "out" / "dashboard-password.txt"
    password = pw_file.read_text().strip()
    assert oct(pw_file.stat().st_mode & 0o777) == "0o600"
    assert password not in " ".join(p.argv)
    assert "--config" in p.argv and str(hall) in p.argv and "--listen" in p.argv
    acc = Accounts(tmp_path / "out" / "dashboard.db")
    _token, session = acc.login("demo", password, "127.0.0.1", datetime.now(UTC))
    assert session.user.role == "manager"
    assert participants(DemoContext(hall="web", broker="mqtt://x", out_dir=tmp_path, headless=True, windows=(),
                                    secret_file=tmp_path / "k")) == []
