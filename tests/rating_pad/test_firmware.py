"""The firmware gates: every firmware file compiles with mpy-cross, and the pad's state machine and
journal give the same answers to the test vectors under CPython and under real MicroPython (the
WebAssembly port under Node)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "rating-pad" / "firmware"
CHECK = FIRMWARE / "check"
VECTORS = Path(__file__).with_name("vectors.json")
MPY_CROSS = Path(sys.executable).with_name("mpy-cross")
FIRMWARE_FILES = sorted(FIRMWARE.glob("*.py"))


def expected(vectors: dict) -> dict:
    out = {}
    for case in vectors["core"]:
        out[case["name"]] = [{"effects": s["effects"], "mode": s["mode"]} for s in case["steps"]]
    for case in vectors["journal"]:
        assert len(case["expect"]) == len(case["steps"]), case["name"]
        out[case["name"]] = case["expect"]
    return out


def assert_matches(results: dict, vectors: dict, interpreter: str) -> None:
    want = expected(vectors)
    assert sorted(results) == sorted(want)
    for name, steps in want.items():
        for i, (got, exp) in enumerate(zip(results[name], steps, strict=True)):
            assert got == exp, f"{interpreter}: case {name}, step {i}"


@pytest.fixture(scope="module")
def vectors() -> dict:
    return json.loads(VECTORS.read_text(encoding="utf-8"))


def test_the_pi_package_imports_the_firmware_files_themselves():
    from hallq.rating_pad import padcore, padjournal

    assert Path(padcore.__file__).resolve() == (FIRMWARE / "padcore.py").resolve()
    assert Path(padjournal.__file__).resolve() == (FIRMWARE / "padjournal.py").resolve()


def test_vectors_under_cpython(vectors, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(FIRMWARE))
    monkeypatch.syspath_prepend(str(CHECK))
    import runvectors

    assert_matches(runvectors.run(vectors, str(tmp_path)), vectors, "CPython")


def test_vectors_under_micropython(vectors):
    node = shutil.which("node")
    assert node, "Node.js is needed for the MicroPython check: run `make setup`"
    assert (CHECK / "node_modules" / "@micropython").is_dir(), "run `make setup` (npm ci in rating-pad/firmware/check)"
    proc = subprocess.run([node, str(CHECK / "run.mjs"), str(FIRMWARE), str(VECTORS)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["implementation"] == "micropython"
    assert_matches(out["results"], vectors, "MicroPython")


@pytest.mark.parametrize("source", FIRMWARE_FILES, ids=[p.name for p in FIRMWARE_FILES])
def test_firmware_compiles_with_mpy_cross(source, tmp_path):
    out = tmp_path / (source.stem + ".mpy")
    proc = subprocess.run([str(MPY_CROSS), "-o", str(out), str(source)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 0


def test_mpy_cross_refuses_what_micropython_cannot_compile(tmp_path):
    # the gate can fail: a CPython-only construct (``match``) is refused
    bad = tmp_path / "bad.py"
    bad.write_text("def f(x):\n    match x:\n        case 1:\n            return 2\n")
    proc = subprocess.run([str(MPY_CROSS), "-o", str(tmp_path / "bad.mpy"), str(bad)], capture_output=True, timeout=30)
    assert proc.returncode != 0


def test_firmware_files_are_all_there():
    assert {p.name for p in FIRMWARE_FILES} >= {"main.py", "padcore.py", "padjournal.py", "picopad.py"}
    assert os.path.islink(ROOT / "rating-pad/src/hallq/rating_pad/padcore.py")


def test_the_pi_wheel_carries_the_firmware_state_machine(tmp_path):
    import zipfile

    uv = shutil.which("uv") or str(ROOT / ".uv" / "bin" / "uv")
    proc = subprocess.run([uv, "build", "--wheel", "--package", "hallq-rating-pad", "-o", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("hallq_rating_pad-*.whl")
    with zipfile.ZipFile(wheel) as z:
        for name in ("padcore.py", "padjournal.py"):
            assert z.read(f"hallq/rating_pad/{name}") == (FIRMWARE / name).read_bytes()
