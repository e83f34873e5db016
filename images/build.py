"""Build hallq's Raspberry Pi images: `python3 images/build.py base | image ROLE | all`.

The base (arm64, under emulation) is built once and cached in $HALLQ_IMAGE_CACHE (default
/var/cache/hallq/images), keyed on its inputs; each role's layer is applied to a copy of it on the host
without emulation, then the disk is put together with genimage (no mounting) and bmaptool.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recipe import CACHE, ROLES, Base


def log(msg: str) -> None:
    print(f"images: {msg}", file=sys.stderr, flush=True)


def ensure_binfmt() -> None:
    """arm64 programs run under qemu-user-static: binfmt_misc must be mounted and the handler enabled."""
    mnt = Path("/proc/sys/fs/binfmt_misc")
    if not (mnt / "status").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(mnt)], check=True)
    if not (mnt / "qemu-aarch64").exists():
        subprocess.run(["update-binfmts", "--enable", "qemu-aarch64"], check=True)
    if not (mnt / "qemu-aarch64").exists():
        raise SystemExit("images: qemu-aarch64 binfmt handler missing: install qemu-user-static (make setup)")


def build_base(force: bool = False) -> Path:
    """The cached base tarball, building it first when its inputs changed (≈12 min of emulation)."""
    base = Base.load()
    target = base.cached()
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time; a second caller waits, then finds it cached
        if target.exists() and not force:
            return target
        ensure_binfmt()
        log(f"building the arm64 base {target.name} (≈12 min under emulation; cached afterwards)")
        tmp = target.with_suffix(".tmp.tar")
        hooks = {h.name: h for h in base.hooks}
        cmd = ["mmdebstrap", f"--architectures={base.architecture}", f"--variant={base.variant}",
               "--include=" + ",".join(base.packages),
               "--aptopt=Acquire::Retries \"3\"",
               "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-include=/usr/share/doc/*/copyright",
               "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/locale/*",
               "--dpkgopt=path-include=/usr/share/locale/zh_CN/*", "--dpkgopt=path-include=/usr/share/locale/locale.alias",
               f"--essential-hook={hooks['essential.sh']}", f"--customize-hook={hooks['customize.sh']}",
               base.suite, str(tmp), *base.sources]
        t0 = time.monotonic()
        subprocess.run(cmd, check=True)
        took = time.monotonic() - t0
        os.replace(tmp, target)
        target.with_suffix(".json").write_text(json.dumps(
            {"key": base.key(), "seconds": round(took, 1), "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             "packages": list(base.packages)}, indent=1))
        log(f"base built in {took:.0f} s: {target}")
        return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="images/build.py", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("base", help="build the arm64 base if it is not cached")
    b.add_argument("--force", action="store_true")
    sub.add_parser("key", help="print the base's cache path")
    i = sub.add_parser("image", help="build one role's image")
    i.add_argument("role", choices=ROLES)
    sub.add_parser("all", help="build every role's image")
    args = ap.parse_args(argv)
    if args.cmd == "base":
        print(build_base(args.force))
    elif args.cmd == "key":
        print(Base.load().cached())
    else:
        from layer import build_image
        for role in ROLES if args.cmd == "all" else (args.role,):
            build_image(role, build_base())
    return 0


if __name__ == "__main__":
    sys.exit(main())
