"""Render ``docs/protocol.md``: every topic of the hall contract with its schema and an example.

The examples are real payloads built from the schema types and encoded as devices send them, so the
document cannot drift from the code (a test renders it again and compares).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import msgspec

from . import CONTRACT_VERSION
from .schemas import (
    AVAILABILITY,
    Board,
    Call,
    CalledTicket,
    CancelReply,
    CancelRequest,
    Case,
    CategoryInfo,
    CategoryQueue,
    ControllerInstance,
    DemoPress,
    DeviceHealth,
    DeviceRegistry,
    DeviceState,
    Error,
    ErrorReply,
    Figures,
    FollowUp,
    FollowUps,
    HallConfig,
    LastService,
    ModemHealth,
    PrinterHealth,
    QueueState,
    RateReply,
    RateRequest,
    RatingRef,
    ReaderHealth,
    Staff,
    Stats,
    TakeReply,
    TakeRequest,
    Ticket,
    TransferTo,
    WindowInfo,
    WindowReply,
    WindowRequest,
    WindowState,
    WindowTicket,
    encode,
)
from .topics import HallTopics

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 11, 23, 9, 41, 7, tzinfo=CST)
T = HallTopics("demo")


@dataclass
class Entry:
    topic: str
    publisher: str
    retained: str
    types: tuple[type, ...]
    examples: tuple[object, ...]
    notes: str = ""


def _entries() -> list[Entry]:
    ticket = Ticket(number="A023", category="A", issued_at=T0, ahead=4, est_wait_min=12)
    served = WindowTicket(
        number="A019", category="A", priority="elderly", issued_at=T0 - timedelta(minutes=20),
        status="called", called_at=T0, recalls=0,
    )
    call = Call(ticket="A019", category="A", window=3, window_name="3号窗口", recall=0, at=T0)
    figures = Figures(
        issued=120, called=98, served=90, noshow=5, transferred=3, wait_mean_min=8.5, wait_p90_min=17.0,
        service_mean_min=6.2, ratings={"very_satisfied": 60, "satisfied": 10, "dissatisfied": 1},
        satisfaction=0.9859,
    )
    return [
        Entry(
            T.request("kiosk-1", "take"), "kiosk", "no", (TakeRequest,),
            (
                TakeRequest(req="k1-0001", category="A", channel="touch"),
                TakeRequest(
                    req="k1-0002", category="B", channel="idcard", priority="elderly",
                    person="5f0c6a1b0e9d4c7a8b2f3e1d6c5b4a39" * 2,
                ),
            ),
            "`person` is an HMAC of the ID number under the hall's key, never the number itself.",
        ),
        Entry(
            T.request("window-3", "window"), "window caller", "no", (WindowRequest, Staff, TransferTo, Case),
            (
                WindowRequest(req="w3-0101", window=3, op="open", staff=Staff(id="s07", name="李娜")),
                WindowRequest(req="w3-0102", window=3, op="next"),
                WindowRequest(req="w3-0103", window=3, op="transfer", to=TransferTo(category="B")),
                WindowRequest(
                    req="w3-0104", window=3, op="done",
                    case=Case(id="3203122026112300017", item_code="000101001000", item_name="城乡居民养老保险参保登记",
                              kind="instant"),
                ),
            ),
            "`op`: next, recall, noshow, transfer, done, pause, resume, open (needs `staff`), close. "
            "`next` while serving first finishes the current ticket.",
        ),
        Entry(
            T.request("pad-3", "rate"), "rating pad", "no", (RateRequest,),
            (RateRequest(req="p3-0042", window=3, ticket="A019", level="very_satisfied"),),
            "`at` (optional) is when the citizen pressed, for ratings kept while the pad was offline.",
        ),
        Entry(
            T.request("sms-1", "cancel"), "SMS gateway, kiosk", "no", (CancelRequest,),
            (CancelRequest(req="sms-3f9a-A023", ticket="A023", person="5f0c6a1b0e9d4c7a8b2f3e1d6c5b4a39" * 2),),
            "The holder of a waiting ticket gives it up (取消排号): `person` must be the key it was taken with. "
            "Refused with `no_ticket` when the ticket does not wait (any more) or is not that person's.",
        ),
        Entry(
            T.reply("kiosk-1"), "controller", "no", (TakeReply, WindowReply, RateReply, CancelReply, ErrorReply, Error),
            (
                TakeReply(req="k1-0001", ticket=ticket),
                WindowReply(req="w3-0102", ticket=served),
                RateReply(req="p3-0042", rating=RatingRef(id=311)),
                CancelReply(req="sms-3f9a-A023", ticket=WindowTicket(number="A023", category="A", issued_at=T0,
                                                                     status="cancelled")),
                ErrorReply(req="k1-0003", error=Error(code="quota_full", message="今日A类号已取完 / today's quota is used up")),
            ),
            "The same `req` from the same client is answered again with the first answer and changes nothing.",
        ),
        Entry(T.controller_status, "controller", "yes", (), ("online",),
              "Plain text: `online`, `stopped` on a clean stop, `offline` as Last Will."),
        Entry(
            T.controller_instance, "controller", "yes", (ControllerInstance,),
            (ControllerInstance(instance="3f2a9c1e", host="hall-ctl", pid=812, db="/var/lib/hallq/hall.db", since=T0,
                                beat=41),),
            "Republished every 2 s while the controller runs (`beat` counts up), emptied on a clean stop. A "
            "controller that starts for the same hall and sees another one beat refuses to start, naming it.",
        ),
        Entry(
            T.config, "controller", "yes", (HallConfig, CategoryInfo, WindowInfo),
            (
                HallConfig(
                    hall="demo", name="示范政务服务中心", timezone="Asia/Shanghai",
                    hours=[("09:00", "12:00"), ("14:00", "18:00")],
                    categories=[CategoryInfo(code="A", name="社保医保", prefix="A")],
                    windows=[WindowInfo(no=3, name="3号窗口", categories=["A", "B"])],
                    notices=["办事请带好身份证"],
                ),
            ),
        ),
        Entry(
            T.queue, "controller", "yes", (QueueState, CategoryQueue),
            (QueueState(at=T0, categories={"A": CategoryQueue(waiting=3, est_wait_min=8, est_wait_range=(5, 12), order=["A021", "A022", "A023"])}),),
            "`order`: the waiting numbers of each queue in the order they will be called as things stand.",
        ),
        Entry(
            T.window_state(3), "controller", "yes", (WindowState, CalledTicket, Staff, LastService),
            (
                WindowState(
                    window=3, status="serving", staff=Staff(id="s07", name="李娜"),
                    ticket=CalledTicket(number="A019", category="A", called_at=T0, recalls=0),
                    last=LastService(number="A018", outcome="done", ended_at=T0 - timedelta(seconds=20)),
                ),
            ),
            "`status`: idle, serving, paused, or closed (no clerk signed in). `last`: how the window's last "
            "service ended (`done`, `noshow`, `transferred`, `expired`); a rating pad invites a rating only "
            "after `done`.",
        ),
        Entry(T.calls, "controller", "no", (Call,), (call,), "One message per call and per recall (`recall` counts them)."),
        Entry(T.board, "controller", "yes", (Board,), (Board(calls=[call]),), "The last 10 calls, newest first."),
        Entry(
            T.stats, "controller", "yes", (Stats, Figures),
            (Stats(date="2026-11-23", at=T0, hall=figures, windows={"3": figures}, staff={"s07": figures},
                   half_hours={"09:30": figures}, quiet_half_hours=["11:30", "16:30"]),),
            "At most once a minute. `satisfaction` = (very satisfied + satisfied) / rated.",
        ),
        Entry(
            T.followups, "controller", "yes", (FollowUps, FollowUp),
            (FollowUps(at=T0, open=[FollowUp(
                id=7, ticket="A019", window=3, level="dissatisfied", rated_at=T0, due="2026-11-30", overdue=False,
                staff=Staff(id="s07", name="李娜"), case_id="3203122026112300017", item_code="000101001000")]),),
            "The open follow-ups of bad reviews (不满意, 非常不满意), oldest first; `due` is `followup_days` "
            "working days after the rating. Published again whenever one is opened or closed.",
        ),
        Entry(
            T.demo_press(1), "`hallq demo`'s simulated hall", "no", (DemoPress,),
            (DemoPress(ticket="A019", level="satisfied"),),
            "Demo only, never in a real hall: the simulated citizen's choice, sent before the clerk's `done`; "
            "the demo's real pad (`hallq pad --demo-presses`, mock GPIO only) presses that button when it invites "
            "the rating of `ticket`, so its GPIO, journal, upload and thank-you paths all run.",
        ),
        Entry(
            T.devices, "controller", "yes", (DeviceRegistry, DeviceState, DeviceHealth, PrinterHealth, ReaderHealth),
            (DeviceRegistry(at=T0, devices=[
                DeviceState(id="kiosk-1", role="kiosk", status="online", version="0.1.0", last_seen=T0,
                            health=DeviceHealth(at=T0, role="kiosk", printer=PrinterHealth(online=True, paper="ok"),
                                                version="0.1.0")),
                DeviceState(id="pad-3", role="pad", window=3, status="never_seen"),
            ]),),
            "Every device listed in hall.toml `[[devices]]` (and any other that speaks up, `listed` false): "
            "`status` online, offline, stopped or never_seen, its last health, software version and when it "
            "was last heard of. Published again whenever one of them changes.",
        ),
        Entry(T.device_status("kiosk-1"), "every device", "yes", (), ("online",),
              "Plain text, like the controller's status."),
        Entry(
            T.device_health("kiosk-1"), "every device", "yes", (DeviceHealth, PrinterHealth, ReaderHealth, ModemHealth),
            (DeviceHealth(at=T0, role="kiosk", printer=PrinterHealth(online=True, paper="near_end"),
                          readers=[ReaderHealth(name="GA 467 /dev/ttyUSB0", online=True)], version="0.1.0"),
             DeviceHealth(at=T0, role="sms", modem=ModemHealth(online=True, sim="ready", registration="home",
                                                               signal_dbm=-83, outbox=0))),
        ),
    ]


def _schema_block(types: tuple[type, ...]) -> str:
    """The JSON Schema of a topic's payload: its first type, or any of them for replies."""
    schemas, components = msgspec.json.schema_components(types, ref_template="#/$defs/{name}")
    top = [s for s, t in zip(schemas, types, strict=True) if t.__name__.endswith(("Reply", "Request")) or t is types[0]]
    doc: dict = top[0] if len(top) == 1 else {"anyOf": top}
    doc = {**doc, "$defs": components}
    return "```json\n" + json.dumps(doc, ensure_ascii=False, indent=2) + "\n```\n"


def render() -> str:
    out = [
        f"# The hall contract, version {CONTRACT_VERSION}",
        "",
        "Generated by `hallq protocol-doc` from `shared/src/hallq/shared/schemas.py`; do not edit by hand.",
        "",
        "- Transport: MQTT 3.1.1 (Mosquitto 2, the embedded amqtt broker, MicroPython's `umqtt.simple`).",
        "- QoS 1 for requests, replies and state. Payloads are JSON objects in UTF-8, except the plain-text",
        f"  availability values {', '.join(f'`{a}`' for a in AVAILABILITY)}.",
        "- Topic root `hallq/{hall}`. A hall id is `[a-z0-9_-]{1,32}`, a client id `[a-z0-9_-]{1,64}`; the",
        "  client id is also the broker user name. Examples below use hall `demo`.",
        "- Every schema refuses unknown, missing and mistyped fields, naming the field.",
        "- Times are ISO 8601 with the hall's UTC offset. Ticket numbers are the category prefix and three digits.",
        "- A request is a JSON object with a `req` (1-64 characters, unique per client). A payload that is",
        "  not a JSON object or has no usable `req` is counted and logged; where a `req` can be read the",
        "  answer is `bad_request`.",
        "",
        "## Topics",
        "",
        "| topic | published by | retained |",
        "| --- | --- | --- |",
    ]
    entries = _entries()
    for e in entries:
        out.append(f"| `{_pattern(e.topic)}` | {e.publisher} | {e.retained} |")
    out.append("")
    for e in entries:
        out += [f"## `{_pattern(e.topic)}`", "", f"Published by {e.publisher}; retained: {e.retained}.", ""]
        if e.notes:
            out += [e.notes, ""]
        out.append("Example" + ("s" if len(e.examples) > 1 else "") + f" (`{e.topic}`):")
        out.append("")
        for ex in e.examples:
            text = ex if isinstance(ex, str) else json.dumps(json.loads(encode(ex)), ensure_ascii=False)
            out += ["```json" if not isinstance(ex, str) else "```text", text, "```", ""]
        if e.types:
            out += ["Schema:", "", _schema_block(e.types)]
    return "\n".join(out).rstrip("\n") + "\n"


def _pattern(topic: str) -> str:
    parts = topic.split("/")
    parts[1] = "{hall}"
    if len(parts) > 3 and parts[2] in ("req", "reply", "device"):
        parts[3] = "{client}"
    if len(parts) > 3 and parts[2] == "window":
        parts[3] = "{n}"
    return "/".join(parts)


if __name__ == "__main__":
    print(render(), end="")
