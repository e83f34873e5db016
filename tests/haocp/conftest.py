"""Fixtures of the 好差评 tests: a local HTTP endpoint standing in for the province's interface (on
127.0.0.1, a free port) whose answers the test scripts, and a hall run by the real controller on real
Mosquitto, with a clerk and a pad client that serve and rate tickets through the contract."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from harness import ControllerInProcess, free_port

HALL_TOML = """
[hall]
id = "hcp"
name = "好差评测试大厅"

[[categories]]
code = "A"
name = "社保医保"

[[windows]]
no = 1
name = "1号窗口"
categories = ["A"]

[haocp]
url = "http://127.0.0.1:{port}/haocp/evaluation"
area_code = "320312"
scheme = "{scheme}"
followup_days = 5
timeout_seconds = 0.4
retry_min_seconds = 0.05
retry_max_seconds = 0.4
"""


class Province:
    """The province's 好差评 endpoint: answers from ``script`` in turn (``timeout``: takes the record but
    answers too late; ``500``; ``400``; ``accept``), then accepts. Keeps one record per idempotency key."""

    def __init__(self, port: int):
        self.port = port
        self.script: list[str] = []
        self.posts: list[dict] = []  # every POST: its key, behaviour, body
        self.accepted: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> Province:
        province = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = self.headers.get("Idempotency-Key")
                with province.lock:
                    what = province.script.pop(0) if province.script else "accept"
                    province.posts.append({"key": key, "what": what, "body": body})
                    if what in ("accept", "timeout") and key == body.get("idempotencyKey"):
                        duplicate = key in province.accepted
                        province.accepted.setdefault(key, body)
                if what == "timeout":
                    time.sleep(1.0)
                if what == "500":
                    self.send_response(500)
                    self.end_headers()
                    self.wfile.write(b'{"code": 500, "msg": "busy"}')
                    return
                if what == "400":
                    self.send_response(400)
                    self.end_headers()
                    self.wfile.write(b'{"code": 400, "msg": "bad projectNo"}')
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps({"code": 0, "duplicate": duplicate}).encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def wait_accepted(self, n: int, timeout: float = 15.0) -> dict[str, dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.accepted) >= n:
                    return dict(self.accepted)
            time.sleep(0.02)
        raise AssertionError(f"the province accepted {len(self.accepted)} records, not {n}")


@pytest.fixture
def province() -> Iterator[Province]:
    p = Province(free_port())  # not listening yet: uploads are refused until the test starts it
    yield p
    p.stop()


class Hall(ControllerInProcess):
    """The real controller of the test hall (restartable on its database), a clerk and a pad client."""

    def __init__(self, broker_url: str, db: Path, port: int, scheme: str = "gbt39046"):
        super().__init__(broker_url, db, HALL_TOML.format(port=port, scheme=scheme))
        self.clients: list = []

    def client(self, client_id: str):
        from hallq.shared.mqtt import HallClient

        c = HallClient(self.url, "hcp", client_id).start()
        assert c.wait_connected(10)
        self.clients.append(c)
        return c

    def serve_and_rate(self, case_id: str, level: str, item_name: str | None = "城乡居民养老保险参保登记") -> str:
        from hallq.shared.schemas import Case, RateRequest, Staff, TakeRequest, WindowRequest

        if not self.clients:
            self.kiosk, self.caller, self.pad = self.client("kiosk-1"), self.client("window-1"), self.client("pad-1")
            self.caller.request("window", WindowRequest(req=self.caller.new_req(), window=1, op="open",
                                                        staff=Staff(id="s07", name="李娜")), timeout=10)
        k, c, p = self.kiosk, self.caller, self.pad
        k.request("take", TakeRequest(req=k.new_req(), category="A"), timeout=10)
        number = c.request("window", WindowRequest(req=c.new_req(), window=1, op="next"), timeout=10).ticket.number
        c.request("window", WindowRequest(req=c.new_req(), window=1, op="done",
                                          case=Case(id=case_id, item_code="000101001000", item_name=item_name)),
                  timeout=10)
        p.request("rate", RateRequest(req=p.new_req(), window=1, ticket=number, level=level), timeout=10)
        return number

    def close(self) -> None:
        for c in self.clients:
            c.stop()
        self.stop()


@pytest.fixture
def hall(mosquitto, province, tmp_path) -> Iterator[Hall]:
    h = Hall(mosquitto.url, tmp_path / "hall.db", province.port)
    h.start()
    yield h
    h.close()
