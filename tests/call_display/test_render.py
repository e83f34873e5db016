"""Headless screenshots of the hall and window screens, both orientations, long Chinese names.

The screenshots are kept under the test's tmp_path; every piece of text must lie inside the screen and
clear of every other piece, and the numbers a citizen reads from afar must be big."""

from __future__ import annotations

import itertools
from datetime import datetime

import pygame
import pytest
from call_display import samples
from hallq.call_display import core
from hallq.call_display.render import HallRenderer, WindowRenderer

WALL = datetime(2026, 11, 23, 9, 41, 7)
SIZES = [(1920, 1080), (1080, 1920)]


def state(mode="hall", window=None, *, offline=False, config=None):
    s = core.initial(core.Settings(mode=mode, window=window))
    events = [core.LinkChanged(True), core.ControllerStatus("offline" if offline else "online"),
              core.ConfigMsg(config or samples.hall_config()), core.QueueMsg(samples.queue()),
              core.BoardMsg(samples.board()), core.StatsMsg(samples.stats()),
              *(core.WindowMsg(w) for w in samples.window_states())]
    for e in events:
        s, _ = core.handle(s, e, 0.0)
    return s


def check_layout(boxes, size):
    screen = pygame.Rect((0, 0), size)
    assert boxes, "nothing was drawn"
    for b in boxes:
        assert screen.contains(b.rect), f"{b.label} {b.rect} is clipped by the screen {size}"
        assert b.text, f"{b.label} lost all its text"
    for a, b in itertools.combinations(boxes, 2):
        assert not a.rect.colliderect(b.rect), f"{a.label} {a.rect} overlaps {b.label} {b.rect}"


def box(boxes, label):
    return next(b for b in boxes if b.label == label)


@pytest.mark.parametrize("size", SIZES, ids=["landscape", "portrait"])
def test_hall_screen(fonts, tmp_path, size):
    surf = pygame.Surface(size)
    r = HallRenderer(fonts)
    s, _ = core.handle(state(offline=True), core.CallMsg(samples.call("A024", 2, minutes=1)), 1.0)
    boxes = r.draw(surf, core.hall_view(s, 1.0, WALL), 1.0)
    pygame.image.save(surf, str(tmp_path / f"hall-{size[0]}x{size[1]}.png"))
    check_layout(boxes, size)
    labels = {b.label for b in boxes}
    assert {"title", "clock", "newest_ticket", "newest_window", "newest_en", "offline", "ticker",
            "window_name:6", "window_ticket:1", "window_status:3", "waiting_count:D"} <= labels
    assert box(boxes, "newest_ticket").text == "A024"
    assert box(boxes, "newest_ticket").rect.height >= 150  # ~10 cm on a 55" screen: readable from 10 m
    assert box(boxes, "newest_window").text == "请到 2号窗口 办理"
    assert box(boxes, "newest_window").rect.height >= 50
    assert box(boxes, "recent_ticket:0").text == "A023" and box(boxes, "recent_window:0").text == "→ 1号窗口"
    assert box(boxes, "recent_ticket:0").rect.height >= 50
    assert box(boxes, "waiting_count:D").text == "27人"
    # the longest window name is shown whole or cut with an ellipsis, never drawn past its box
    long_name = box(boxes, "window_name:6").text
    assert long_name == samples.window_name(6) or long_name.endswith("…")


@pytest.mark.parametrize("size", SIZES, ids=["landscape", "portrait"])
def test_hall_screen_flashes(fonts, tmp_path, size):
    surf = pygame.Surface(size)
    r = HallRenderer(fonts)
    s, _ = core.handle(state(), core.CallMsg(samples.call("A024", 2, minutes=1)), 0.0)
    r.draw(surf, core.hall_view(s, 0.1, WALL), 0.1)
    bright = pygame.image.tobytes(surf, "RGB")
    pygame.image.save(surf, str(tmp_path / "flash-on.png"))
    r.draw(surf, core.hall_view(s, 0.1 + core.FLASH_PERIOD, WALL), 0.1)
    dark = pygame.image.tobytes(surf, "RGB")
    assert bright != dark
    r.draw(surf, core.hall_view(s, 30.0, WALL), 0.1)
    assert pygame.image.tobytes(surf, "RGB") == dark  # after the flash: the calm picture


@pytest.mark.parametrize("size", SIZES, ids=["landscape", "portrait"])
@pytest.mark.parametrize("window", [2, 3, 4, 5])
def test_window_screen(fonts, tmp_path, size, window):
    surf = pygame.Surface(size)
    r = WindowRenderer(fonts)
    s = state("window", window, offline=window == 5)
    if window == 2:
        s, _ = core.handle(s, core.CallerNotice("无人等候，请稍后再呼叫", "Nobody is waiting"), 0.0)
    boxes = r.draw(surf, core.window_view(s, 0.1, WALL), 0.1)
    pygame.image.save(surf, str(tmp_path / f"window{window}-{size[0]}x{size[1]}.png"))
    check_layout(boxes, size)
    assert box(boxes, "window_name").text.startswith(f"{window}号窗口")
    if window == 2:
        assert box(boxes, "ticket").text == "B022"
        assert box(boxes, "ticket").rect.height >= 250  # very large
        assert box(boxes, "notice").text == "无人等候，请稍后再呼叫"
        assert box(boxes, "staff").text == "工作人员 司马相如"
    elif window == 3:
        assert box(boxes, "status_big").text == "暂停服务"
        assert box(boxes, "staff").text == "工作人员 诸葛孔明"
    elif window == 4:
        assert box(boxes, "status_big").text == "请稍候"
    else:
        assert box(boxes, "status_big").text == "未开放"
        assert "offline" in {b.label for b in boxes}


def test_window_screen_recall_flashes_again(fonts):
    surf = pygame.Surface((1920, 1080))
    r = WindowRenderer(fonts)
    s, _ = core.handle(state("window", 2), core.CallMsg(samples.call("B022", 2, recall=1)), 0.0)
    boxes = r.draw(surf, core.window_view(s, 0.0, WALL), 0.0)
    assert box(boxes, "serving_label").text == "再次呼叫 · Calling again"
    on = surf.get_at((960, 1070))[:3]
    r.draw(surf, core.window_view(s, core.FLASH_PERIOD, WALL), 0.0)
    off = surf.get_at((960, 1070))[:3]
    assert on != off


def test_before_the_controller_answers_the_hall_screen_says_so(fonts):
    surf = pygame.Surface((1920, 1080))
    boxes = HallRenderer(fonts).draw(surf, core.hall_view(core.initial(core.Settings()), 0, WALL), 0)
    assert "connecting" in {b.label for b in boxes} and "offline" in {b.label for b in boxes}
    check_layout(boxes, (1920, 1080))


def test_many_windows_and_the_sample_hall_fit(fonts, tmp_path):
    from hallq.shared.schemas import WindowInfo

    cfg = samples.hall_config(windows=[WindowInfo(no=n, name=f"{n}号窗口 综合受理", categories=["A"])
                                       for n in range(1, 15)])
    for size in SIZES:
        surf = pygame.Surface(size)
        boxes = HallRenderer(fonts).draw(surf, core.hall_view(state(config=cfg), 0, WALL), 0)
        pygame.image.save(surf, str(tmp_path / f"14-windows-{size[0]}.png"))
        check_layout(boxes, size)
        assert {f"window_name:{n}" for n in range(1, 15)} <= {b.label for b in boxes}


def test_english_can_be_turned_off(fonts):
    surf = pygame.Surface((1920, 1080))
    boxes = HallRenderer(fonts, english=False).draw(surf, core.hall_view(state(), 0, WALL), 0)
    assert "newest_en" not in {b.label for b in boxes} and "title_en" not in {b.label for b in boxes}
    check_layout(boxes, (1920, 1080))


def test_ticker_alone_redraws_exactly_its_strip(fonts):
    size = (1920, 1080)
    r = HallRenderer(fonts)
    s = state()
    full, part = pygame.Surface(size), pygame.Surface(size)
    r.draw(full, core.hall_view(s, 0, WALL), 3.7)
    r.draw(part, core.hall_view(s, 0, WALL), 0.0)
    rect = r.ticker(part, core.hall_view(s, 0, WALL), 3.7)
    assert rect.bottom == size[1] and rect.width == size[0] and 0 < rect.height < 120
    assert pygame.image.tobytes(full, "RGB") == pygame.image.tobytes(part, "RGB")
    before = pygame.image.tobytes(part.subsurface(rect), "RGB")
    r.ticker(part, core.hall_view(s, 0, WALL), 4.7)
    assert pygame.image.tobytes(part.subsurface(rect), "RGB") != before  # it scrolled


def test_a_recall_says_calling_again(fonts):
    s, _ = core.handle(state(), core.CallMsg(samples.call("C021", 3, recall=1, minutes=3)), 0.0)
    boxes = HallRenderer(fonts).draw(pygame.Surface((1920, 1080)), core.hall_view(s, 0.0, WALL), 0.0)
    assert box(boxes, "newest_label").text == "再次呼叫 · Calling again"
    assert box(boxes, "newest_ticket").text == "C021"
    s, _ = core.handle(s, core.CallMsg(samples.call("C022", 3, minutes=4)), 1.0)
    boxes = HallRenderer(fonts).draw(pygame.Surface((1920, 1080)), core.hall_view(s, 1.0, WALL), 1.0)
    assert box(boxes, "newest_label").text == "正在呼叫 · Now calling"  # a heading, not half a sentence ("请 ·")


# -- legible from 10 m: a minimum glyph height per text role ----------------------------------------------------
def example_hall():
    """The sample hall of `make demo` (controller/examples/hall.toml): six categories, eight windows."""
    import tomllib
    from pathlib import Path

    from hallq.shared.schemas import CategoryInfo, WindowInfo

    raw = tomllib.loads((Path(__file__).parents[2] / "controller/examples/hall.toml").read_text("utf-8"))
    return samples.hall_config(
        name=raw["hall"]["name"] if "hall" in raw else "示范县政务服务中心",
        categories=[CategoryInfo(code=c["code"], name=c["name"], prefix=c["code"], name_en=c.get("name_en"))
                    for c in raw["categories"]],
        windows=[WindowInfo(no=w["no"], name=w["name"], name_en=w.get("name_en"), categories=["A"])
                 for w in raw["windows"]])


HALLS = {
    "sample": samples.hall_config,
    "example": example_hall,
    "14-windows": lambda: samples.hall_config(windows=[
        samples.WindowInfo(no=n, name=f"{n}号窗口 综合受理", categories=["A"]) for n in range(1, 15)]),
}


@pytest.mark.parametrize("size", SIZES, ids=["landscape", "portrait"])
@pytest.mark.parametrize("hall", sorted(HALLS))
def test_every_label_is_legible_from_10_m(fonts, tmp_path, size, hall):
    """Every text on the hall screen reaches its role's minimum glyph height (render.MIN_GLYPH_PX), and the
    texts of one role in a table share one size (the English category names were once 12 px, one of them
    twice the size of the others)."""
    from hallq.call_display.render import MIN_GLYPH_PX, glyph_height, role_of

    r = HallRenderer(fonts)
    s, _ = core.handle(state(config=HALLS[hall]()), core.CallMsg(samples.call("A024", 2, minutes=1)), 1.0)
    surf = pygame.Surface(size)
    boxes = r.draw(surf, core.hall_view(s, 1.0, WALL), 1.0)
    pygame.image.save(surf, str(tmp_path / f"{hall}-{size[0]}x{size[1]}.png"))
    check_layout(boxes, size)
    sizes: dict[str, set[int]] = {}
    for b in boxes:
        role = role_of(b.label)
        assert role in MIN_GLYPH_PX, f"{b.label}: a text role without a legibility floor"
        h = glyph_height(r.cache, b.text, b.size, b.bold)
        assert h >= MIN_GLYPH_PX[role], f"{b.label} {b.text!r}: glyphs {h} px, under {MIN_GLYPH_PX[role]} px"
        sizes.setdefault(role, set()).add(b.size)
    for role in ("window_name", "window_status", "window_ticket", "recent_ticket", "recent_window", "waiting_name",
                 "waiting_name_en", "waiting_count", "waiting_est"):
        assert len(sizes.get(role, {0})) == 1, f"{role} drawn in several sizes: {sorted(sizes[role])}"
    if hall == "example":
        assert {role_of(b.label) for b in boxes} >= {"waiting_name_en", "title_en", "newest_en"}


def test_glyph_height_measures_what_the_eye_reads(fonts):
    """Capital height for Latin text and digits, a full ideograph's for Chinese alone, whatever letters the
    text has."""
    from hallq.call_display.render import TextCache, glyph_height

    cache = TextCache(fonts)
    assert glyph_height(cache, "Taxation", 40) == glyph_height(cache, "HHH", 40) < glyph_height(cache, "税务", 40)
    assert 0.65 < glyph_height(cache, "x", 100) / 100 < 0.8  # a cap height, not an x-height
    assert glyph_height(cache, "0人", 40) == glyph_height(cache, "H", 40)  # the digit is what must be read
    assert glyph_height(cache, "即到即办", 40) == glyph_height(cache, "国", 40)


@pytest.mark.parametrize("size", SIZES, ids=["landscape", "portrait"])
def test_outside_the_hours_the_wait_column_says_when_numbers_are_issued(fonts, tmp_path, size):
    """Not 即到即办 at 12:30: the column says when numbers are issued again, whole and in one legible size;
    with some categories served and others not, the column keeps one size too."""
    from hallq.call_display.render import MIN_GLYPH_PX, glyph_height

    r = HallRenderer(fonts)
    for name, s, wall in (("lunch", state(), WALL.replace(hour=12, minute=30)),
                          ("mixed", state(config=example_hall()), WALL)):
        surf = pygame.Surface(size)
        boxes = r.draw(surf, core.hall_view(s, 1.0, wall), 1.0)
        pygame.image.save(surf, str(tmp_path / f"hall-{name}-{size[0]}x{size[1]}.png"))
        check_layout(boxes, size)
        ests = [b for b in boxes if b.label.startswith("waiting_est:")]
        if name == "lunch":
            assert [b.text for b in ests] == ["14:00 取号"] * 4
        else:  # every window of the example serves A only
            assert [b.text for b in ests][1:] == ["暂无窗口"] * 5 and ests[0].text != "暂无窗口"
        assert len({b.size for b in ests}) == 1 and not any(b.text.endswith("…") for b in ests)
        assert all(glyph_height(r.cache, b.text, b.size) >= MIN_GLYPH_PX["waiting_est"] for b in ests)
