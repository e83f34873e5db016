"""sd_notify through cysystemd, against a real datagram socket standing in for systemd's."""

from __future__ import annotations

import os
import socket

import pytest
from hallq.shared.service import Notifier


@pytest.fixture
def notify_socket(tmp_path):
    path = tmp_path / "notify"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    s.settimeout(2)
    yield path, s
    s.close()


def recv_all(s: socket.socket) -> list[str]:
    out = []
    s.setblocking(False)
    try:
        while True:
            out.append(s.recv(4096).decode())
    except BlockingIOError:
        pass
    s.settimeout(2)
    return out


def test_ready_status_and_watchdog_pings_at_half_the_period(notify_socket, monkeypatch):
    path, s = notify_socket
    t = [100.0]
    env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())}
    n = Notifier(env, clock=lambda: t[0])
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))  # libsystemd reads the variable itself
    assert n.interval == 5.0
    assert not n.alive(), "no ping before READY"
    n.ready("serving")
    assert recv_all(s) == ["STATUS=serving", "READY=1"]
    t[0] += 4.9
    assert not n.alive()
    t[0] += 0.2
    assert n.alive()
    assert recv_all(s) == ["WATCHDOG=1"]
    n.stopping()
    assert recv_all(s) == ["STOPPING=1"]


def test_outside_systemd_nothing_is_sent_and_nothing_fails(notify_socket, monkeypatch):
    _, s = notify_socket
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    n = Notifier({})
    n.ready()
    assert not n.alive()
    n.stopping()
    assert recv_all(s) == []


def test_a_watchdog_meant_for_another_process_is_ignored(notify_socket):
    path, _ = notify_socket
    n = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "1"})
    assert n.interval is None
