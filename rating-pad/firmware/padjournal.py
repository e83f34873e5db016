"""The pad's ratings journal: every rating is on disk (or flash) before it is sent, and stays there until
the controller has answered it. Shared by the Pico W firmware and the Raspberry Pi pad; runs unchanged
under MicroPython and CPython. The Pi package imports it as ``hallq.rating_pad.padjournal`` (a symlink).

The file is append-only JSON lines:
  {"op": "rate", "req": ..., "window": ..., "ticket": ..., "level": ..., "at": ...}
  {"op": "done", "req": ...}
  {"op": "seq", "n": ...}        the request counter (written first when the file is compacted)

What it promises
  - ``add`` returns only once the rating's line is written and synced (``os.fsync`` where there is one;
    on MicroPython's littlefs a closed file is committed), so a rating the citizen saw thanked survives a
    power cut.
  - Each rating gets its ``req`` when it is added, and keeps it: a rating sent again after a restart
    carries the same ``req`` and its original ``at``, and the controller answers a repeated ``req`` with
    its first answer, so a rating is counted once however often it is sent.
  - ``pending`` lists, oldest first, the ratings not yet answered. A line torn by a power cut while it
    was written is dropped (its rating was never thanked: the sync had not returned) and the file is
    rewritten so that the next line does not join it.
  - When nothing is pending and the file has grown past ``compact_at`` lines it is rewritten (to a
    temporary file, synced, then renamed over the journal).
"""

import json
import os

FIELDS = ("window", "ticket", "level", "at", "called_at")


class Journal:
    def __init__(self, path, compact_at=200):
        self.path = path
        self.compact_at = compact_at
        self.seq = 0
        self.pending = []
        self.lines = 0
        self._load()

    def add(self, rating, at, stamp):
        """Keep ``rating`` ({"window", "ticket", "level"}) pressed at ``at`` (ISO 8601 text or None).

        ``stamp`` is a short text that differs between power-ups (the time the pad knows, e.g.
        ``20261123T094107``); the ``req`` is ``stamp-seq``. Returns the record, with its ``req``.
        """
        self.seq += 1
        rec = {
            "op": "rate",
            "req": str(stamp) + "-" + str(self.seq),
            "window": rating["window"],
            "ticket": rating["ticket"],
            "level": rating["level"],
            "at": at,
            "called_at": rating.get("called_at"),  # the service rated (its call time), when known
        }
        self._append(rec)
        self.pending.append(rec)
        return rec

    def done(self, req):
        """The controller answered ``req``: it will never be sent again."""
        if not any(r["req"] == req for r in self.pending):
            return False
        self._append({"op": "done", "req": req})
        self.pending = [r for r in self.pending if r["req"] != req]
        if not self.pending and self.lines > self.compact_at:
            self.compact()
        return True

    def compact(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(json.dumps({"op": "seq", "n": self.seq}) + "\n")
            for rec in self.pending:
                f.write(json.dumps(rec) + "\n")
            _sync(f)
        os.rename(tmp, self.path)
        _sync_dir(self.path)
        self.lines = 1 + len(self.pending)

    # -- inside ------------------------------------------------------------------------------------
    def _append(self, rec):
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")
            _sync(f)
        self.lines += 1

    def _load(self):
        try:
            with open(self.path) as f:
                text = f.read()
        except OSError:
            return  # no journal yet
        torn = bool(text) and not text.endswith("\n")
        by_req = {}
        order = []
        for line in text.split("\n"):
            if not line:
                continue
            self.lines += 1
            try:
                rec = json.loads(line)
                op = rec["op"]
            except (ValueError, KeyError, TypeError):
                torn = True
                continue
            if op == "seq":
                self.seq = max(self.seq, rec["n"])
            elif op == "rate":
                by_req[rec["req"]] = rec
                order.append(rec["req"])
                self.seq = max(self.seq, _seq_of(rec["req"]))
            elif op == "done":
                by_req.pop(rec["req"], None)
        self.pending = [by_req[req] for req in order if req in by_req]
        if torn:
            self.compact()


def _seq_of(req):
    tail = req.split("-")[-1]
    try:
        return int(tail)
    except ValueError:
        return 0


def _sync(f):
    f.flush()
    fsync = getattr(os, "fsync", None)
    if fsync is not None:
        fsync(f.fileno())


def _sync_dir(path):
    flag = getattr(os, "O_DIRECTORY", None)
    if flag is None:
        return
    d = path.rsplit("/", 1)[0] if "/" in path else "."
    fd = os.open(d or "/", flag)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
