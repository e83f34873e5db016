import pytest
from hallq.shared.topics import HallTopics, Request, TopicError

T = HallTopics("demo")


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        (T.request("kiosk-1", "take"), "hallq/demo/req/kiosk-1/take"),
        (T.request("window-3", "window"), "hallq/demo/req/window-3/window"),
        (T.request("pad-3", "rate"), "hallq/demo/req/pad-3/rate"),
        (T.all_requests, "hallq/demo/req/+/+"),
        (T.reply("kiosk-1"), "hallq/demo/reply/kiosk-1"),
        (T.controller_status, "hallq/demo/controller/status"),
        (T.config, "hallq/demo/config"),
        (T.queue, "hallq/demo/queue"),
        (T.window_state(3), "hallq/demo/window/3/state"),
        (T.all_window_states, "hallq/demo/window/+/state"),
        (T.calls, "hallq/demo/calls"),
        (T.board, "hallq/demo/board"),
        (T.stats, "hallq/demo/stats"),
        (T.followups, "hallq/demo/followups"),
        (T.device_status("kiosk-1"), "hallq/demo/device/kiosk-1/status"),
        (T.device_health("kiosk-1"), "hallq/demo/device/kiosk-1/health"),
    ],
)
def test_topics(topic, expected):
    assert topic == expected


@pytest.mark.parametrize("hall", ["", "Demo", "a" * 33, "hall/1", "hall+", "大厅"])
def test_bad_hall_ids_are_refused(hall):
    with pytest.raises(TopicError, match="hall id"):
        HallTopics(hall)


@pytest.mark.parametrize("client", ["", "Kiosk", "a" * 65, "k/1", "#"])
def test_bad_client_ids_are_refused(client):
    with pytest.raises(TopicError, match="client id"):
        T.reply(client)


def test_unknown_action_is_refused():
    with pytest.raises(TopicError, match="unknown action"):
        T.request("kiosk-1", "steal")


def test_parse_request_round_trips():
    assert T.parse_request(T.request("pad-3", "rate")) == Request("pad-3", "rate")


@pytest.mark.parametrize(
    "topic",
    ["hallq/other/req/k/take", "hallq/demo/req/k", "hallq/demo/req/K/take", "hallq/demo/req/k/fly", "x/demo/req/k/take"],
)
def test_parse_request_refuses_foreign_topics(topic):
    with pytest.raises(TopicError):
        T.parse_request(topic)


def test_window_state_topic_parses_back():
    assert T.parse_window_state(T.window_state(12)) == 12
    with pytest.raises(TopicError):
        T.parse_window_state("hallq/demo/window/x/state")
    with pytest.raises(TopicError):
        T.window_state(0)
