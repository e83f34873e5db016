"""The clerk's web caller (软件呼叫器): window operations sent with the window's own device identity.

Every window has one identity for its web caller: the client id ``web-caller-{n}`` on an open broker (list it
in ``[[devices]]`` with ``role = "window"`` and ``window = n`` when the hall lists its devices), or the
identity of a provisioning bundle whose ``device.toml`` says ``role = "window"`` for that window. The
dashboard opens that window's MQTT connection (a :class:`~hallq.shared.mqtt.HallClient` of its own) when a
clerk first uses it, so the controller, the statistics and the screens cannot tell the web caller from a
hardware one.

:func:`build_request` turns a form into a contract :class:`WindowRequest` or raises :class:`FormError`
(nothing is sent); :meth:`Callers.operate` sends it and returns the controller's answer, or raises
:class:`CallerError` with the contract's error code (``empty``, ``paused``, …) or ``timeout``.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

from hallq.shared.config import BrokerURL, ConfigError
from hallq.shared.mqtt import HallClient, RequestError, RequestTimeout
from hallq.shared.schemas import (
    Case,
    HallConfig,
    Staff,
    TransferTo,
    WindowReply,
    WindowRequest,
)

log = logging.getLogger(__name__)

OPS = ("open", "close", "next", "recall", "noshow", "transfer", "done", "pause", "resume")
CASE_KINDS = ("instant", "promised", "joint", "reported", "refused")
ID_RE = re.compile(r"^[A-Za-z0-9_./-]{1,64}$")


class FormError(ValueError):
    """A caller form that cannot become a request; ``field`` names the bad field (message in zh and en)."""

    def __init__(self, field: str, zh: str, en: str):
        super().__init__(en)
        self.field = field
        self.zh = zh
        self.en = en


class CallerError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Identity:
    """Who the web caller of a window is on the broker."""

    client_id: str
    broker: BrokerURL


def build_request(req: str, window: int, op: str, form: dict[str, str], staff: Staff | None,
                  config: HallConfig | None) -> WindowRequest:
    """The contract request for a caller form (``form``: the posted fields)."""
    if op not in OPS:
        raise FormError("op", f"未知的操作 {op!r}", f"unknown operation {op!r}")
    if op == "open":
        if staff is None:
            raise FormError("staff", "签到需要工作人员账号", "signing in at a window needs a clerk")
        return WindowRequest(req=req, window=window, op="open", staff=staff)
    if op == "transfer":
        cat = (form.get("to_category") or "").strip()
        win = (form.get("to_window") or "").strip()
        if bool(cat) == bool(win):
            raise FormError("to", "请选择一个业务类别或一个窗口（只选一个）", "choose exactly one category or one window to transfer to")
        if cat:
            if config is not None and cat not in {c.code for c in config.categories}:
                raise FormError("to_category", f"没有业务类别 {cat!r}", f"unknown category {cat!r}")
            return WindowRequest(req=req, window=window, op="transfer", to=TransferTo(category=cat))
        if not win.isdigit() or not 1 <= int(win) <= 999:
            raise FormError("to_window", f"{win!r} 不是窗口号", f"{win!r} is not a window number")
        if config is not None and int(win) not in {w.no for w in config.windows}:
            raise FormError("to_window", f"没有 {win} 号窗口", f"there is no window {win}")
        if int(win) == window:
            raise FormError("to_window", "不能转给本窗口", "a ticket cannot be transferred to its own window")
        return WindowRequest(req=req, window=window, op="transfer", to=TransferTo(window=int(win)))
    if op == "done":
        case_id = (form.get("case_id") or "").strip()
        item_code = (form.get("item_code") or "").strip()
        item_name = (form.get("item_name") or "").strip()
        kind = (form.get("case_kind") or "").strip()
        if not case_id and not item_code and not item_name and not kind:
            return WindowRequest(req=req, window=window, op="done")
        if not case_id or not ID_RE.fullmatch(case_id):
            raise FormError("case_id", "办件编号：1-64 位字母、数字或 - _ . /", "the case number is 1-64 letters, digits or - _ . /")
        if not item_code or not ID_RE.fullmatch(item_code):
            raise FormError("item_code", "事项编码：1-64 位字母、数字或 - _ . /", "the item code is 1-64 letters, digits or - _ . /")
        if len(item_name) > 200:
            raise FormError("item_name", "事项名称最多 200 字", "the item name is at most 200 characters")
        if kind and kind not in CASE_KINDS:
            raise FormError("case_kind", f"未知的办件类型 {kind!r}", f"unknown kind of case {kind!r}")
        case = Case(id=case_id, item_code=item_code, item_name=item_name or None, kind=kind or None)  # type: ignore[arg-type]
        return WindowRequest(req=req, window=window, op="done", case=case)
    return WindowRequest(req=req, window=window, op=op)  # type: ignore[arg-type]


class Callers:
    """One MQTT connection per window that a web caller has used; opened on first use."""

    def __init__(self, hall: str, identity_of: Callable[[int], Identity], *, timeout: float = 5.0):
        self.hall = hall
        self._identity_of = identity_of
        self._clients: dict[int, HallClient] = {}
        self._lock = threading.Lock()
        self.timeout = timeout

    def client(self, window: int) -> HallClient:
        with self._lock:
            c = self._clients.get(window)
            if c is None:
                try:
                    ident = self._identity_of(window)
                except ConfigError as exc:
                    raise CallerError("no_identity", str(exc)) from None
                c = HallClient(ident.broker, self.hall, ident.client_id)
                c.start()
                self._clients[window] = c
            return c

    def operate(self, window: int, make: Callable[[str], WindowRequest]) -> WindowReply:
        c = self.client(window)
        if not c.wait_connected(self.timeout):
            raise CallerError("timeout", "the broker cannot be reached")
        request = make(c.new_req())
        try:
            reply = c.request("window", request, timeout=self.timeout, resend_every=1.0)
        except RequestError as exc:
            raise CallerError(exc.code, exc.message) from None
        except RequestTimeout:
            raise CallerError("timeout", "the controller did not answer") from None
        assert isinstance(reply, WindowReply)
        return reply

    def stop(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            c.stop()
