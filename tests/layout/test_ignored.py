"""Issue 13: the READMEs' example commands, run from the repository root, leave nothing git would show as new:
the controller's record and its lock (``--db hall.db``), screenshots and reports, the demo's folder."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_what_the_examples_write_in_the_root_is_ignored():
    names = ["hall.db", "hall.db-wal", "hall.db-shm", "hall.db.lock", "hall.png", "r.json", "demo-out/report.txt"]
    r = subprocess.run(["git", "check-ignore", "--no-index", *names], cwd=ROOT, capture_output=True, text=True)
    assert sorted(r.stdout.split()) == sorted(names), r.stdout
