"""The README tells a new user the truth about set-up, and its example commands leave the tree clean."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def apt_packages() -> list[str]:
    text = (ROOT / "scripts/setup.sh").read_text(encoding="utf-8")
    # the list may span lines and carry comments (which may hold parentheses): drop comments first
    text = re.sub(r"#[^\n]*", "", text)
    m = re.search(r"^APT_PACKAGES=\(([^)]*)\)", text, re.M)
    assert m, "scripts/setup.sh has no APT_PACKAGES=(...) list"
    return m.group(1).split()


def test_the_readme_names_every_package_setup_installs():
    """The README once missed npm and python3-venv, and never said that scripts/setup-extra.sh runs."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    setup_part = readme.split("## The demo")[0]
    missing = [p for p in apt_packages() if not re.search(rf"(?<![\w-]){re.escape(p)}(?![\w-])", setup_part)]
    assert not missing, f"README.md's set-up paragraph does not name {missing} (scripts/setup.sh installs them)"
    assert "scripts/setup-extra.sh" in setup_part


def test_example_outputs_in_the_root_are_ignored_by_git():
    """`--screenshot hall.png` or `--report r.json` run from the root must not show up as changes."""
    r = subprocess.run(["git", "check-ignore", "hall.png", "r.json", "demo-out/logs/x.log"], cwd=ROOT,
                       capture_output=True, text=True)
    if r.returncode == 128:  # not a git checkout (an unpacked source tree): nothing to dirty
        return
    assert r.stdout.split() == ["hall.png", "r.json", "demo-out/logs/x.log"]


def test_readme_commands_write_outside_the_tree_or_into_ignored_folders():
    for readme in [ROOT / "README.md", *ROOT.glob("*/README.md")]:
        for m in re.finditer(r"--(?:screenshot|report|out)[ =](\S+)", readme.read_text(encoding="utf-8")):
            target = m.group(1).strip("`\"'")
            assert target.startswith(("/", "demo-out/", "$", "DIR", "FILE", "<")) or target.isupper(), \
                f"{readme.relative_to(ROOT)}: {m.group(0)} writes into the repository"
