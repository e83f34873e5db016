"""The device's first-boot script (images/files/usr/lib/hallq/setup.py), its pure parts on the host."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from imagekit import REPO

spec = importlib.util.spec_from_file_location("hallq_setup", REPO / "images/files/usr/lib/hallq/setup.py")
setup = importlib.util.module_from_spec(spec)
spec.loader.exec_module(setup)


def test_broker_conf_points_at_the_files_on_the_data_partition():
    conf = ("listener 8883\ncafile /home/tech/keyring/broker/ca.crt\ncertfile broker/server.crt\n"
            "keyfile /x/server.key\npassword_file /etc/mosquitto/passwd\nacl_file acl\n"
            "log_dest file /var/log/mosquitto/mosquitto.log\npersistence true\npersistence_location /var/lib/mosquitto/\n"
            "# cafile in a comment stays\nallow_anonymous false\n")
    out = setup.device_broker_conf(conf, Path("/data/broker")).splitlines()
    assert "cafile /data/broker/ca.crt" in out
    assert "certfile /data/broker/server.crt" in out
    assert "keyfile /data/broker/server.key" in out
    assert "password_file /data/broker/passwd" in out
    assert "acl_file /data/broker/acl" in out
    assert "persistence_location /data/mosquitto/" in out
    assert not any(line.startswith("log_dest file") for line in out) and out[-1] == "log_dest stderr"
    assert "# cafile in a comment stays" in out and "allow_anonymous false" in out and "listener 8883" in out


def test_every_layer_loads_and_the_base_key_follows_its_inputs():
    import sys

    sys.path.insert(0, str(REPO / "images"))
    from recipe import ROLES, Base, Layer

    layers = [Layer.load(r) for r in ROLES]
    base = Base.load()
    for lay in layers:
        assert set(lay.debian) <= set(base.packages), "a layer's Debian packages are in the base"
        for unit in lay.units:
            if unit.startswith("hallq-"):
                assert (REPO / "images/files/etc/systemd/system" / unit).exists()
    assert len(base.key()) == 16 and base.key() == Base.load().key()
