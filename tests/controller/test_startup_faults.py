"""Issue 9 §6 and §5: a database that cannot be written at start-up is one clear line and exit 75 (as at run
time), never a traceback; the database file is created 0600."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest
from controller_kit import HALL_TOML
from harness import HALLQ, ROOT, free_port


def run_controller(tmp_path, db) -> subprocess.CompletedProcess:
    (tmp_path / "hall.toml").write_text(HALL_TOML, encoding="utf-8")
    return subprocess.run(
        [HALLQ, "controller", "--config", str(tmp_path / "hall.toml"), "--broker", f"mqtt://127.0.0.1:{free_port()}",
         "--db", str(db)],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )


def test_a_read_only_database_at_start_up_is_one_line_and_exit_75(tmp_path):
    from hallq.controller import config
    from hallq.controller.storage import Storage

    db = tmp_path / "hall.db"
    Storage(db, config.parse(HALL_TOML)).close()
    ro = tmp_path / "ro"
    ro.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(ro)], check=False, capture_output=True)
    mounted = os.path.ismount(ro)
    target = ro / "hall.db"
    try:
        if mounted:  # a read-only file system, as when the SD card's partition turns read-only
            target.write_bytes(db.read_bytes())
            subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        else:  # without mount rights: the immutable attribute, or else no test
            target.write_bytes(db.read_bytes())
            if subprocess.run(["chattr", "+i", str(target)], capture_output=True).returncode != 0:
                pytest.skip("neither mount nor chattr available")
        r = run_controller(tmp_path, target)
    finally:
        if mounted:
            subprocess.run(["umount", str(ro)], check=False)
        else:
            subprocess.run(["chattr", "-i", str(target)], check=False, capture_output=True)
    assert r.returncode == 75, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "cannot write" in ln]
    assert len(lines) == 1 and str(target) in lines[0], r.stderr


def test_a_full_disk_at_start_up_is_one_line_and_exit_75(tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(full)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        try:
            with open(full / "filler", "wb") as f:  # fill it up
                while True:
                    f.write(b"\0" * 4096)
                    f.flush()
        except OSError:
            pass
        r = run_controller(tmp_path, full / "hall.db")
    finally:
        subprocess.run(["umount", str(full)], check=False)
    assert r.returncode == 75, r.stderr
    assert "Traceback" not in r.stderr, r.stderr


def test_the_database_file_is_created_0600(tmp_path):
    from hallq.controller import config
    from hallq.controller.storage import Storage

    db = tmp_path / "hall.db"
    Storage(db, config.parse(HALL_TOML)).close()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    for side in tmp_path.glob("hall.db-*"):
        assert stat.S_IMODE(side.stat().st_mode) & 0o077 == 0, side
