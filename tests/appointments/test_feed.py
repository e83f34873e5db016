"""The bookings feed: a file dropped in the folder is read, read again when it changes, not while it stays
the same; the URL is polled through failures (refused, 500, a time-out) and an unchanged answer is not
imported twice; ``hallq controller bookings`` checks a file before it is dropped."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from hallq.controller.bookings import Feed
from hallq.controller.config import AppointmentsSection
from harness import free_port

ROOT = Path(__file__).resolve().parents[2]
CATS = ["A", "B"]
ROW = "code,category,date,start,end\n{code},A,2026-03-02,09:00,09:30\n"


def test_the_folder_is_read_when_a_file_comes_or_changes(tmp_path):
    got = []
    feed = Feed(AppointmentsSection(folder=str(tmp_path)), CATS, got.append)
    feed.scan()
    assert got == []
    (tmp_path / "a.csv").write_text(ROW.format(code="2026001"), encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not bookings", encoding="utf-8")
    feed.scan()
    assert [(e.source, [b.code for b in e.bookings]) for e in got] == [("a.csv", ["2026001"])]
    feed.scan()
    assert len(got) == 1  # unchanged: not read again
    p = tmp_path / "a.csv"
    p.write_text(ROW.format(code="2026002") + "2026003,A,2026-03-02,09:00\n", encoding="utf-8")
    os.utime(p, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    feed.scan()
    assert [b.code for b in got[-1].bookings] == ["2026002"]
    assert [str(e) for e in feed.errors["a.csv"]] == ["line 3: 4 cells where the header has 5"]


def test_a_missing_folder_is_logged_not_raised(tmp_path, caplog):
    feed = Feed(AppointmentsSection(folder=str(tmp_path / "nowhere")), CATS, lambda e: None)
    feed.scan()
    assert "unreadable" in caplog.text


class Endpoint:
    """A booking platform's endpoint: answers from ``script`` in turn (``500``, ``slow``, ``ok``), then ok."""

    def __init__(self) -> None:
        self.script: list[str] = []
        self.hits = 0
        self.body = ROW.format(code="2026001")
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def do_GET(self) -> None:
                endpoint.hits += 1
                what = endpoint.script.pop(0) if endpoint.script else "ok"
                if what == "slow":
                    time.sleep(1.0)
                if what == "500":
                    self.send_response(500)
                    self.end_headers()
                    return
                data = endpoint.body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/csv; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_url_is_polled_through_failures_and_read_once_per_change():
    ep = Endpoint()
    try:
        cfg = AppointmentsSection(url=f"http://127.0.0.1:{ep.port}/bookings.csv", timeout_seconds=0.3,
                                  retries=3, retry_min_seconds=0.05, poll_seconds=5)
        feed = Feed(cfg, CATS, lambda e: None)
        import httpx

        feed.http = httpx.Client(timeout=cfg.timeout_seconds)
        ep.script = ["500", "slow", "500"]
        text, kind = feed.fetch()
        assert kind == "csv" and "2026001" in text and ep.hits == 4
        assert feed.fetch() is None  # the same answer: nothing new
        ep.body = ROW.format(code="2026009")
        assert "2026009" in feed.fetch()[0]
        ep.script = ["500"] * 10
        assert feed.fetch() is None  # gave up after the retries; the next poll tries again
        assert ep.hits == 4 + 1 + 1 + 4
    finally:
        ep.close()


def test_refused_connection_is_retried_then_given_up():
    cfg = AppointmentsSection(url=f"http://127.0.0.1:{free_port()}/b.json", timeout_seconds=0.3, retries=2,
                              retry_min_seconds=0.01)
    feed = Feed(cfg, CATS, lambda e: None)
    import httpx

    feed.http = httpx.Client(timeout=cfg.timeout_seconds)
    assert feed.fetch() is None


def test_the_check_command_names_each_bad_row(tmp_path):
    f = tmp_path / "b.csv"
    f.write_text(ROW.format(code="2026001") + "2026002,Q,2026-03-02,09:00,09:30\n", encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "hallq.shared.cli", "controller", "bookings", str(f), "--config",
                        str(ROOT / "controller" / "examples" / "hall.toml")], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1
    assert f"{f} line 3: no category 'Q' in this hall" in r.stdout
    assert "1 bookings for 2026-03-02, 1 malformed rows" in r.stdout
