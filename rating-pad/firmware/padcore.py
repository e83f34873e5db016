"""The rating pad's state machine, shared by the Pico W firmware and the Raspberry Pi pad.

This one file runs unchanged under MicroPython and CPython: no typing, no dataclasses, no walrus, plain
dicts and lists only. The Pi package imports it as ``hallq.rating_pad.padcore`` (a symlink to this file).

``handle(state, event, now) -> (state, effects)`` is pure: it reads no clock, pin or socket. ``now`` is a
monotonic time in whole milliseconds, given by the caller. The state passed in is never changed; a new
one is returned. Events and effects are lists of JSON values, so test vectors can drive both interpreters.

Events
  ["sync", window_state]   a snapshot of ``window/{n}/state`` (a retained message, the first after
                           subscribing): remembered, never invites (nobody knows when it happened)
  ["state", window_state]  a live ``window/{n}/state`` message
  ["down", i] / ["up", i]  an edge of button i (0 = 非常满意 … 4 = 非常不满意)
  ["tick"]                 time passes: timeouts, and button levels that have settled

Effects
  ["leds", "pulse"] / ["leds", "off"] / ["leds", "one", i]
  ["show", "invite", {"window", "clerk", "ticket"}]
  ["show", "thanks", {"window", "ticket", "level"}]
  ["show", "idle", {"window", "clerk", "status"}]
  ["rate", {"window", "ticket", "level", "called_at"}]   keep and send this rating (the adapter journals it;
                                             called_at names the service rated)
  ["ignored", text]                         a press that rates nothing (nothing to rate, the thank-you
                                             shows, or the button went down before this invitation)
  ["error", text]                           a bad event, ignored; the state is unchanged

What it promises
  - When the window stops serving ticket X (it goes idle, pauses, closes or calls the next ticket), it
    invites a rating for X, once per service (a service is the ticket number and its call time).
  - One press of one button during an invitation gives one ``rate`` and a thank-you; presses outside an
    invitation, during the thank-you, or of a button held down rate nothing (a press says ``ignored``).
  - A press counts for the invitation that showed when its button went down: a press that went down during
    the thank-you or before the invitation (and settled after it came) is never charged to the next case.
  - A button's level counts only after it has been steady for ``debounce_ms``; a press is the moment the
    steady level goes down, so a held button never repeats.
  - The invitation ends after ``invite_ms``, the thank-you after ``thanks_ms``.
"""

LEVELS = ("very_satisfied", "satisfied", "basic", "dissatisfied", "very_dissatisfied")
LEVEL_NAMES_ZH = ("非常满意", "满意", "基本满意", "不满意", "非常不满意")
STATUSES = ("idle", "serving", "paused", "closed")
INVITE_TEXT = "请对本次服务进行评价"
THANKS_TEXT = "感谢您的评价"

DEFAULTS = {"invite_ms": 30000, "thanks_ms": 4000, "debounce_ms": 30}
REMEMBER = 8  # services remembered as already invited


def new_state(window, settings=None):
    """The state of a pad at ``window`` that has seen nothing yet."""
    if not isinstance(window, int) or isinstance(window, bool) or window < 1:
        raise ValueError("window must be a positive integer")
    s = {
        "window": window,
        "mode": "idle",  # idle | invite | thanks
        "until": 0,
        "status": None,  # the window's status as last seen
        "serving": None,  # [ticket, called_at] the window serves, as last seen
        "clerk": None,  # the name of the clerk signed in, as last seen
        "invite": None,  # {"window", "clerk", "ticket"} while inviting or thanking
        "seen": [],  # services already invited, newest last
        # [raw down, steady down, ms of last change, the service invited when the raw level last went down]
        "buttons": [[False, False, None, None] for _ in range(5)],
    }
    for key in DEFAULTS:
        value = DEFAULTS[key]
        if settings and key in settings:
            value = settings[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(key + " must be a whole number of milliseconds")
        s[key] = value
    return s


def handle(state, event, now):
    """One event at ``now`` (ms): the new state and the effects, in order."""
    if not isinstance(event, (list, tuple)) or not event:
        return state, [["error", "an event is a non-empty list"]]
    kind = event[0]
    if kind == "tick":
        return _tick(state, now)
    if kind == "sync" or kind == "state":
        if len(event) != 2:
            return state, [["error", kind + " needs one window state"]]
        return _window(state, event[1], now, kind == "state")
    if kind == "down" or kind == "up":
        if len(event) != 2 or not _is_button(event[1]):
            return state, [["error", kind + " needs a button 0-4"]]
        return _edge(state, event[1], kind == "down", now)
    return state, [["error", "unknown event " + repr(kind)]]


def screen_text(effect):
    """The lines a small screen shows for a ``show`` effect (for screens and logs)."""
    what = effect[1]
    info = effect[2]
    if what == "invite":
        lines = [INVITE_TEXT, str(info["window"]) + "号窗口  " + info["ticket"]]
        if info.get("clerk"):
            lines.append("工作人员 " + info["clerk"])
        return lines
    if what == "thanks":
        return [THANKS_TEXT, LEVEL_NAMES_ZH[LEVELS.index(info["level"])]]
    lines = [str(info["window"]) + "号窗口"]
    if info.get("clerk"):
        lines.append("工作人员 " + info["clerk"])
    return lines


# -- window state ------------------------------------------------------------------------------------
def _check_window_state(ws, window):
    if not isinstance(ws, dict):
        return "a window state is a JSON object"
    if ws.get("window") != window:
        return "window state of window " + repr(ws.get("window")) + ", this pad is at " + str(window)
    if ws.get("status") not in STATUSES:
        return "bad window status " + repr(ws.get("status"))
    t = ws.get("ticket")
    if t is not None and (
        not isinstance(t, dict) or not isinstance(t.get("number"), str) or not isinstance(t.get("called_at"), str)
    ):
        return "ticket needs a number and called_at"
    staff = ws.get("staff")
    if staff is not None and (not isinstance(staff, dict) or not isinstance(staff.get("name"), str)):
        return "staff needs a name"
    last = ws.get("last")
    if last is not None and (
        not isinstance(last, dict) or not isinstance(last.get("number"), str) or not isinstance(last.get("outcome"), str)
    ):
        return "last needs a number and an outcome"
    return None


def _not_served(ws, number):
    # The controller says how the window's last service ended; a no-show (过号) or a transfer away is no
    # service to rate. A controller that does not say is taken at its word that the service ended.
    last = ws.get("last")
    return last is not None and last["number"] == number and last["outcome"] != "done"


def _window(state, ws, now, live):
    problem = _check_window_state(ws, state["window"])
    if problem:
        return state, [["error", problem]]
    t = ws.get("ticket")
    serving = None
    if ws["status"] == "serving" and t is not None:
        serving = [t["number"], t["called_at"]]
    staff = ws.get("staff")
    clerk = staff["name"] if staff else None
    s = dict(state)
    before = state["serving"]
    s["serving"] = serving
    s["status"] = ws["status"]
    s["clerk"] = clerk
    effects = []
    if live and before is not None and before != serving and _not_served(ws, before[0]):
        s["seen"] = (state["seen"] + [before])[-REMEMBER:]
        if s["mode"] == "idle" and (clerk != state["clerk"] or ws["status"] != state["status"]):
            effects.append(["show", "idle", _idle_info(s)])
    elif live and before is not None and before != serving and before not in state["seen"]:
        s["seen"] = (state["seen"] + [before])[-REMEMBER:]
        s["mode"] = "invite"
        s["until"] = now + state["invite_ms"]
        # the service rated is the ticket and its call time: a rating names it, so the controller can tell
        # today's A001 from yesterday's
        s["invite"] = {"window": state["window"], "clerk": state["clerk"], "ticket": before[0],
                       "called_at": before[1]}
        effects.append(["leds", "pulse"])
        effects.append(["show", "invite", {"window": state["window"], "clerk": state["clerk"], "ticket": before[0]}])
    elif s["mode"] == "idle" and (clerk != state["clerk"] or ws["status"] != state["status"]):
        effects.append(["show", "idle", _idle_info(s)])
    return s, effects


def _idle_info(s):
    return {"window": s["window"], "clerk": s["clerk"], "status": s["status"]}


# -- time ---------------------------------------------------------------------------------------------
def _tick(state, now):
    s = state
    effects = []
    if state["mode"] != "idle" and now >= state["until"]:
        s = dict(state)
        s["mode"] = "idle"
        s["invite"] = None
        effects.append(["leds", "off"])
        effects.append(["show", "idle", _idle_info(s)])
    for i in range(5):
        raw, steady, changed = s["buttons"][i][:3]
        if raw != steady and _settled(s, changed, now):
            s, more = _settle(s, i, raw, now)
            effects.extend(more)
    return s, effects


# -- buttons ----------------------------------------------------------------------------------------------
def _is_button(i):
    return isinstance(i, int) and not isinstance(i, bool) and 0 <= i < 5


def _settled(state, changed, now):
    return changed is None or now - changed >= state["debounce_ms"]


def _invited(state):
    """The service the pad invites a rating for now ([ticket, called_at]), or None."""
    if state["mode"] != "invite":
        return None
    return [state["invite"]["ticket"], state["invite"].get("called_at")]


def _edge(state, i, down, now):
    raw, steady, changed, went_down = state["buttons"][i]
    if down and not raw:
        went_down = _invited(state)  # what the finger saw when it went down
    if down == steady:
        if raw == down:
            return state, []  # a repeat of the level it already has: a held button does not repeat
        return _set_button(state, i, [down, steady, changed, went_down]), []  # bounced back before it settled
    if not _settled(state, changed, now):
        return _set_button(state, i, [down, steady, changed, went_down]), []  # bounce: wait for it to settle
    return _settle(_set_button(state, i, [down, steady, changed, went_down]), i, down, now)


def _set_button(state, i, value):
    s = dict(state)
    buttons = list(state["buttons"])
    buttons[i] = value
    s["buttons"] = buttons
    return s


def _settle(state, i, down, now):
    went_down = state["buttons"][i][3]
    s = _set_button(state, i, [down, down, now, went_down])
    if not down:
        return s, []
    return _press(s, i, went_down, now)


def _press(state, i, went_down, now):
    what = "a press of " + LEVEL_NAMES_ZH[i] + " (button " + str(i) + ")"
    if state["mode"] == "idle":
        return state, [["ignored", what + ": nothing to rate"]]
    if state["mode"] == "thanks":
        return state, [["ignored", what + ": the thank-you for " + state["invite"]["ticket"] + " shows"]]
    if went_down != _invited(state):
        return state, [["ignored", what + ": it went down before the invitation for " + state["invite"]["ticket"]]]
    inv = state["invite"]
    level = LEVELS[i]
    s = dict(state)
    s["mode"] = "thanks"
    s["until"] = now + state["thanks_ms"]
    return s, [
        ["rate", {"window": inv["window"], "ticket": inv["ticket"], "level": level, "called_at": inv.get("called_at")}],
        ["leds", "one", i],
        ["show", "thanks", {"window": inv["window"], "ticket": inv["ticket"], "level": level}],
    ]
