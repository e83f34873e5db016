"""The demo's stand-in for the province's 好差评 system: a small HTTP endpoint on 127.0.0.1.

It answers the controller's uploads (:mod:`hallq.controller.haocp`) like a province would: it checks the
record (``idempotencyKey`` equal to the ``Idempotency-Key`` header, a ``projectNo``, a satisfaction code
1-5, ``assessTime`` as ``YYYYMMDDThhmmss``, a six-to-twelve digit ``areaCode``), keeps one record per key
(a repeat is answered as a duplicate) and says ``{"code": 0}``; a record it cannot take gets HTTP 400 with
the reason. To show the outbox at work it also, for a few records chosen from the demo's seed and the key
(so the same seed picks the same ones), is busy once (HTTP 503: the controller retries later) or refuses
the record as the province's case system would (HTTP 400 "办件编号不存在": the upload is marked rejected).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: Shares of the records that meet a busy province once, and that it refuses.
BUSY_SHARE = 0.06
REFUSE_SHARE = 0.03


class Province:
    """``start()`` then ``url``; ``counts`` says what it did (accepted, duplicates, busy, refused)."""

    def __init__(self, seed: int, path: str = "/haocp/evaluation"):
        self.seed = seed
        self.path = path
        self.accepted: dict[str, dict] = {}
        self.counts = {"accepted": 0, "duplicate": 0, "busy": 0, "refused": 0}
        self._busy_once: set[str] = set()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.path}"

    def _dice(self, key: str) -> float:
        h = hashlib.sha256(f"{self.seed}:{key}".encode()).digest()
        return int.from_bytes(h[:8], "big") / 2**64

    def answer(self, key: str | None, raw: bytes) -> tuple[int, dict]:
        """The HTTP status and JSON body for one POST (pure but for the records it keeps)."""
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, {"code": 400, "msg": "请求不是 JSON / not JSON"}
        problem = _check(key, body)
        if problem:
            with self._lock:
                self.counts["refused"] += 1
            return 400, {"code": 400, "msg": problem}
        assert key is not None
        with self._lock:
            if key in self.accepted:
                self.counts["duplicate"] += 1
                return 200, {"code": 0, "msg": "重复提交，已忽略 / duplicate", "duplicate": True}
            u = self._dice(key)
            if u < REFUSE_SHARE:
                self.counts["refused"] += 1
                return 400, {"code": 4001, "msg": f"办件编号不存在 / unknown projectNo {body['projectNo']}"}
            if u < REFUSE_SHARE + BUSY_SHARE and key not in self._busy_once:
                self._busy_once.add(key)
                self.counts["busy"] += 1
                return 503, {"code": 503, "msg": "系统繁忙 / busy, try again"}
            self.accepted[key] = body
            self.counts["accepted"] += 1
            return 200, {"code": 0, "msg": "成功 / ok", "duplicate": False}

    def start(self) -> Province:
        province = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                if self.path != province.path:
                    status, body = 404, {"code": 404, "msg": "no such interface"}
                else:
                    raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                    status, body = province.answer(self.headers.get("Idempotency-Key"), raw)
                data = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="province", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _check(key: str | None, body: object) -> str | None:
    if not isinstance(body, dict):
        return "记录不是对象 / the record is not an object"
    if not key or body.get("idempotencyKey") != key:
        return "缺少幂等键 / Idempotency-Key missing or not the record's"
    if not body.get("projectNo"):
        return "缺少办件编号 / projectNo missing"
    if str(body.get("satisfaction")) not in ("1", "2", "3", "4", "5"):
        return "满意度代码无效 / bad satisfaction code"
    if not re.fullmatch(r"\d{8}T\d{6}", str(body.get("assessTime", ""))):
        return "评价时间格式错误 / assessTime is not YYYYMMDDThhmmss"
    if not re.fullmatch(r"\d{6}(\d{3})?(\d{3})?", str(body.get("areaCode", ""))):
        return "行政区划代码无效 / bad areaCode"
    return None
