"""Every MQTT topic of the hall contract v1, built in one place.

Nobody writes a topic string by hand: devices and the controller ask a :class:`HallTopics` for it.
The topic root is ``hallq/{hall}``; hall ids are ``[a-z0-9_-]{1,32}``, client ids ``[a-z0-9_-]{1,64}``
(the client id is also the broker user name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PREFIX = "hallq"

HALL_ID_RE = re.compile(r"[a-z0-9_-]{1,32}")
CLIENT_ID_RE = re.compile(r"[a-z0-9_-]{1,64}")

#: The request actions of contract v1 (the last topic level of a request).
ACTIONS = ("take", "window", "rate", "cancel")


class TopicError(ValueError):
    """A hall id, client id, window number or topic that does not fit the contract."""


def check_hall_id(hall: str) -> str:
    if not isinstance(hall, str) or not HALL_ID_RE.fullmatch(hall):
        raise TopicError(f"hall id {hall!r} must be 1-32 characters of a-z, 0-9, '_' or '-'")
    return hall


def check_client_id(client: str) -> str:
    if not isinstance(client, str) or not CLIENT_ID_RE.fullmatch(client):
        raise TopicError(f"client id {client!r} must be 1-64 characters of a-z, 0-9, '_' or '-'")
    return client


def _check_window(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise TopicError(f"window number {n!r} must be a positive integer")
    return n


@dataclass(frozen=True, slots=True)
class Request:
    """A request topic taken apart: who sent it and which action it asks for."""

    client: str
    action: str


@dataclass(frozen=True, slots=True)
class HallTopics:
    """The topics of one hall."""

    hall: str

    def __post_init__(self) -> None:
        check_hall_id(self.hall)

    @property
    def root(self) -> str:
        return f"{PREFIX}/{self.hall}"

    # -- requests and replies -------------------------------------------------------------------
    def request(self, client: str, action: str) -> str:
        """Where ``client`` publishes a request for ``action``."""
        if action not in ACTIONS:
            raise TopicError(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
        return f"{self.root}/req/{check_client_id(client)}/{action}"

    @property
    def all_requests(self) -> str:
        """The filter the controller subscribes to for every request."""
        return f"{self.root}/req/+/+"

    def requests_of(self, client: str) -> str:
        """The filter for every request of one client (the controller reads each listed device on its own)."""
        return f"{self.root}/req/{check_client_id(client)}/+"

    def parse_request(self, topic: str) -> Request:
        """Take a request topic apart; raises :class:`TopicError` if it is not one of this hall's."""
        parts = topic.split("/")
        if len(parts) != 5 or parts[0] != PREFIX or parts[1] != self.hall or parts[2] != "req":
            raise TopicError(f"{topic!r} is not a request topic of hall {self.hall!r}")
        client, action = parts[3], parts[4]
        check_client_id(client)
        if action not in ACTIONS:
            raise TopicError(f"unknown action {action!r} in {topic!r}")
        return Request(client, action)

    def reply(self, client: str) -> str:
        """Where the controller answers ``client``."""
        return f"{self.root}/reply/{check_client_id(client)}"

    # -- published by the controller --------------------------------------------------------------
    @property
    def controller_status(self) -> str:
        return f"{self.root}/controller/status"

    @property
    def controller_instance(self) -> str:
        """Which controller process serves the hall (so a second one can name it and refuse to start)."""
        return f"{self.root}/controller/instance"

    @property
    def config(self) -> str:
        return f"{self.root}/config"

    @property
    def queue(self) -> str:
        return f"{self.root}/queue"

    def window_state(self, window: int) -> str:
        return f"{self.root}/window/{_check_window(window)}/state"

    @property
    def all_window_states(self) -> str:
        return f"{self.root}/window/+/state"

    def parse_window_state(self, topic: str) -> int:
        """The window number of a window state topic."""
        parts = topic.split("/")
        if len(parts) != 5 or parts[:3] != [PREFIX, self.hall, "window"] or parts[4] != "state":
            raise TopicError(f"{topic!r} is not a window state topic of hall {self.hall!r}")
        try:
            return _check_window(int(parts[3]))
        except ValueError as exc:
            raise TopicError(f"bad window number in {topic!r}") from exc

    @property
    def calls(self) -> str:
        return f"{self.root}/calls"

    @property
    def board(self) -> str:
        return f"{self.root}/board"

    @property
    def stats(self) -> str:
        return f"{self.root}/stats"

    @property
    def followups(self) -> str:
        return f"{self.root}/followups"

    @property
    def devices(self) -> str:
        """The controller's registry of the hall's devices (retained)."""
        return f"{self.root}/devices"

    def parse_device_topic(self, topic: str) -> tuple[str, str]:
        """``(client, "status" | "health")`` of a device status or health topic."""
        parts = topic.split("/")
        if len(parts) != 5 or parts[:3] != [PREFIX, self.hall, "device"] or parts[4] not in ("status", "health"):
            raise TopicError(f"{topic!r} is not a device status or health topic of hall {self.hall!r}")
        return check_client_id(parts[3]), parts[4]

    # -- published by devices ---------------------------------------------------------------------
    def device_status(self, client: str) -> str:
        return f"{self.root}/device/{check_client_id(client)}/status"

    def device_health(self, client: str) -> str:
        return f"{self.root}/device/{check_client_id(client)}/health"

    @property
    def all_device_status(self) -> str:
        return f"{self.root}/device/+/status"

    @property
    def all_device_health(self) -> str:
        return f"{self.root}/device/+/health"

    def demo_press(self, window: int) -> str:
        """Demo only: which button the simulated citizen at ``window`` presses on the real (mock-GPIO) pad."""
        return f"{self.root}/demo/pad/{window}/press"

    @property
    def everything(self) -> str:
        """Every topic of this hall (for monitors and tests)."""
        return f"{self.root}/#"
