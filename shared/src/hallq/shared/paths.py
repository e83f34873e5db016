"""Folders a role writes into: made when missing, and said so, never silently.

A user who names ``--db /srv/hall/today.db`` or a pad's journal on a fresh card should learn that
``/srv/hall`` was made for it (and a typo in a path shows up in the log at once, not weeks later as a
stray folder). A folder that cannot be made is a :class:`PathError` that names the path, the purpose and
the reason in one line.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


class PathError(OSError):
    """A folder that is needed cannot be made or is not a folder."""


def ensure_dir(folder: str | os.PathLike[str], purpose: str, *, mode: int = 0o755) -> Path:
    """Make ``folder`` (and its parents) if it is missing, logging each folder made, for ``purpose`` (e.g.
    "the hall's record"). Returns it; raises :class:`PathError` naming it when it cannot be made."""
    p = Path(folder)
    if p.is_dir():
        return p
    missing = [q for q in (p, *p.parents) if not q.exists()]
    try:
        p.mkdir(parents=True, exist_ok=True, mode=mode)
    except OSError as exc:
        raise PathError(f"cannot make the folder {p} for {purpose}: {exc.strerror or exc}") from None
    for q in reversed(missing):
        log.info("made the folder %s (for %s)", q, purpose)
    return p


def ensure_parent(path: str | os.PathLike[str], purpose: str, *, mode: int = 0o755) -> Path:
    """:func:`ensure_dir` for the folder that holds the file ``path``; returns ``path``."""
    p = Path(path)
    ensure_dir(p.parent, purpose, mode=mode)
    return p
