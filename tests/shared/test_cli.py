import subprocess
import sys
from pathlib import Path

HALLQ = Path(sys.executable).parent / "hallq"


def test_hallq_help_lists_the_installed_roles():
    out = subprocess.run([str(HALLQ), "--help"], capture_output=True, text=True, check=True).stdout
    assert "broker" in out and "protocol-doc" in out


def test_unknown_subcommand_is_a_clear_error():
    proc = subprocess.run([str(HALLQ), "fly"], capture_output=True, text=True)
    assert proc.returncode == 2 and "No such command 'fly'" in proc.stderr
