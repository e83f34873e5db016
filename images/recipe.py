"""The image recipe: the base (images/base.toml + its hooks) and one layer per role (images/layers/<role>.toml).

Read by images/build.py and by the tests; standard library only, so it runs on any Python 3.11 build host.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROLES = ("controller", "kiosk", "display", "pad")
CACHE = Path(os.environ.get("HALLQ_IMAGE_CACHE", "/var/cache/hallq/images"))
OUT = HERE / "out"


@dataclass(frozen=True)
class Layer:
    role: str
    debian: tuple[str, ...]
    members: tuple[str, ...]
    optional_members: tuple[str, ...]
    from_debian: tuple[str, ...]
    units: tuple[str, ...]
    config: str

    @classmethod
    def load(cls, role: str) -> Layer:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
        data = tomllib.loads((HERE / "layers" / f"{role}.toml").read_text())
        known = {"role", "debian", "members", "optional_members", "from_debian", "units", "config"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"layers/{role}.toml: unknown key(s) {', '.join(sorted(unknown))}")
        if data["role"] != role:
            raise ValueError(f"layers/{role}.toml says role = {data['role']!r}")
        return cls(role, tuple(data["debian"]), tuple(data["members"]),
                   tuple(data.get("optional_members", ())), tuple(data.get("from_debian", ())),
                   tuple(data["units"]), data["config"])


@dataclass(frozen=True)
class Base:
    suite: str
    architecture: str
    variant: str
    sources: tuple[str, ...]
    hooks: tuple[Path, ...]
    packages: tuple[str, ...]

    @classmethod
    def load(cls) -> Base:
        data = tomllib.loads((HERE / "base.toml").read_text())
        layers = [Layer.load(r) for r in ROLES]
        packages = sorted(set(data["packages"]).union(*(lay.debian for lay in layers)))
        return cls(data["suite"], data["architecture"], data["variant"], tuple(data["sources"]),
                   tuple(HERE / h for h in data["hooks"]), tuple(packages))

    def key(self) -> str:
        """A digest of everything that goes into the base: its packages, sources, variant and hooks."""
        h = hashlib.sha256()
        for part in (self.suite, self.architecture, self.variant, *self.sources, *self.packages):
            h.update(part.encode() + b"\0")
        for hook in self.hooks:
            h.update(hook.name.encode() + b"\0" + hook.read_bytes() + b"\0")
        return h.hexdigest()[:16]

    def cached(self) -> Path:
        return CACHE / f"base-{self.suite}-{self.architecture}-{self.key()}.tar"
