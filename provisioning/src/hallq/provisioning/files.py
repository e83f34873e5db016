"""Writing files so that nothing is ever half-written, and secrets are never readable by others."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

SECRET = 0o600
PUBLIC = 0o644


class ProvisionError(Exception):
    """A clear refusal: the message names what is wrong; nothing was half-written."""


def atomic_write(path: Path, data: bytes | str, mode: int = PUBLIC) -> None:
    """Write ``data`` to a temporary file beside ``path`` with ``mode``, fsync it, then rename it over."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def private_dir(path: Path) -> Path:
    """Make ``path`` (mode 0700) or tighten an existing one."""
    path = Path(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def toml_str(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value, ensure_ascii=False)


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return toml_str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")
