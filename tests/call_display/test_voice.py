"""Voice: which clips, in what order; the mixer queue (SDL's dummy audio); espeak-ng packs; SYN6288 frames."""

from __future__ import annotations

import itertools
import os
import subprocess
import threading
import time
import wave

import pytest
from call_display import samples
from call_display.kit import HALLQ, write_tone
from hallq.call_display import voice

A023_ZH = ["zh/qing", "zh/A", "zh/0", "zh/2", "zh/3", "zh/hao", "zh/dao", "zh/3", "zh/hao", "zh/chuangkou",
           "zh/banli"]
A023_EN = ["en/number", "en/A", "en/0", "en/2", "en/3", "en/please_go_to_window", "en/3"]


def test_a023_at_window_3():
    call = samples.call("A023", 3)
    assert voice.announcement(call, ("zh",)) == ["chime", *A023_ZH]
    assert voice.announcement(call, ("zh", "en")) == ["chime", *A023_ZH, *A023_EN]
    assert voice.announcement(call, ("en",), repeats=2) == ["chime", *A023_EN, *A023_EN]


def test_a_recall_is_announced_the_same_way_again():
    first = samples.call("A023", 3)
    recall = samples.call("A023", 3, recall=1, minutes=2)
    assert voice.announcement(recall) == voice.announcement(first)


@pytest.mark.parametrize("n,zh,en", [
    (3, ["3"], ["3"]),
    (10, ["shi"], ["10"]),
    (12, ["shi", "2"], ["12"]),
    (20, ["2", "shi"], ["20"]),
    (42, ["4", "shi", "2"], ["40", "2"]),
    (100, ["1", "bai"], ["1", "hundred"]),
    (105, ["1", "bai", "0", "5"], ["1", "hundred", "5"]),
    (110, ["1", "bai", "1", "shi"], ["1", "hundred", "10"]),
    (999, ["9", "bai", "9", "shi", "9"], ["9", "hundred", "90", "9"]),
])
def test_window_numbers(n, zh, en):
    assert voice.zh_number(n) == [f"zh/{x}" for x in zh]
    assert voice.en_number(n) == [f"en/{x}" for x in en]


def test_a_pack_without_its_clips_is_refused(tmp_path, quick_pack):
    with pytest.raises(voice.PackError, match="not a folder"):
        voice.ClipPack(tmp_path / "nowhere")
    write_tone(tmp_path / "p" / "chime.wav", 0.01, 440)
    with pytest.raises(voice.PackError, match=r"lacks \d+ clips: zh/qing"):
        voice.ClipPack(tmp_path / "p")
    voice.ClipPack(quick_pack)


def test_two_calls_at_once_never_overlap_and_keep_their_order(quick_pack):
    started: list[tuple[str, float]] = []
    v = voice.MixerVoice(voice.ClipPack(quick_pack), languages=("zh", "en"),
                         on_start=lambda c, t: started.append((c.ticket, t)))
    try:
        calls = [samples.call("A023", 3), samples.call("B007", 12), samples.call("A023", 3, recall=1)]
        barrier = threading.Barrier(2)

        def say(c):
            barrier.wait()
            v.say(c)

        threads = [threading.Thread(target=say, args=(c,)) for c in calls[:2]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        v.say(calls[2])
        assert v.idle(10)
    finally:
        v.close()
    played = v.played
    assert len(played) == 3 and v.errors == 0
    assert {p.ticket for p in played[:2]} == {"A023", "B007"} and played[2].recall == 1
    by_ticket = {(p.ticket, p.recall): p for p in played}
    assert list(by_ticket[("A023", 0)].clips) == ["chime", *A023_ZH, *A023_EN]
    assert list(by_ticket[("B007", 0)].clips) == ["chime", "zh/qing", "zh/B", "zh/0", "zh/0", "zh/7", "zh/hao",
                                                  "zh/dao", "zh/shi", "zh/2", "zh/hao", "zh/chuangkou", "zh/banli",
                                                  "en/number", "en/B", "en/0", "en/0", "en/7",
                                                  "en/please_go_to_window", "en/12"]
    for a, b in itertools.pairwise(played):
        assert b.start >= a.end, f"{b.ticket} started before {a.ticket} finished"
        assert a.end - a.start >= 0.1  # 19-20 clips of 10 ms were played, not skipped
    assert [t for t, _ in started] == [p.ticket for p in played]


def test_announce_to_a_file(tmp_path, quick_pack):
    out = voice.render_wav(samples.call("A023", 3), voice.ClipPack(quick_pack), tmp_path / "call.wav")
    with wave.open(str(out)) as w:
        seconds = w.getnframes() / w.getframerate()
    assert seconds == pytest.approx(0.01 * (1 + len(A023_ZH) + len(A023_EN)), abs=0.005)


def test_pinyin_voice_reads_the_tones():
    """The reason for cmn-latn-pinyin: 请 (qing3), 号 (hao4) and 口 (kou3) come out with their tones."""
    out = subprocess.run(["espeak-ng", "-q", "-x", "-v", voice.PINYIN_VOICE, "qing3 hao4 chuang1 kou3"],
                         capture_output=True, text=True, check=True).stdout
    qing, hao, chuang, kou = out.split("_|")[:4]
    assert "21" in qing and "51" in hao and "55" in chuang and "214" in kou
    assert voice.ZH_WORDS_PINYIN["qing"] == "qing3" and voice.ZH_WORDS_PINYIN["chuangkou"] == "chuang1 kou3"


def test_voice_pack_and_announce_commands(tmp_path):
    env = {**os.environ, "SDL_AUDIODRIVER": "dummy"}
    res = subprocess.run([HALLQ, "display", "voice-pack", "--out", str(tmp_path / "pack")], capture_output=True,
                         text=True, env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    pack = voice.ClipPack(tmp_path / "pack")
    with wave.open(str(pack.path("zh/qing"))) as w:
        assert 0.2 < w.getnframes() / w.getframerate() < 1.5
    res = subprocess.run([HALLQ, "display", "announce", "A023", "3", "--out", str(tmp_path / "call.wav"), "--pack",
                          str(tmp_path / "pack"), "--lang", "zh"], capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    with wave.open(str(tmp_path / "call.wav")) as w:
        assert 3 < w.getnframes() / w.getframerate() < 12
    res = subprocess.run([HALLQ, "display", "announce", "A23", "3", "--out", str(tmp_path / "x.wav"), "--pack",
                          str(tmp_path / "pack")], capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode != 0 and "ticket" in res.stderr and not (tmp_path / "x.wav").exists()


def test_syn6288_frame_matches_the_datasheet_example():
    # 「宇音天下」 as the SYN6288 datasheet spells its example frame.
    assert voice.syn6288_frame("宇音天下").hex(" ") == "fd 00 0b 01 00 d3 ee d2 f4 cc ec cf c2 c1"
    assert voice.zh_text(samples.call("A023", 3)) == "请A零二三号到3号窗口办理"
    with pytest.raises(ValueError):
        voice.syn6288_frame("请" * 101)


def test_syn6288_voice_waits_for_the_chip_between_announcements():
    master, slave = os.openpty()
    got: list[tuple[bytes, float]] = []

    def chip():
        buf = b""
        while True:
            try:
                buf += os.read(master, 512)
            except OSError:
                return
            while len(buf) >= 3 and len(buf) >= 3 + int.from_bytes(buf[1:3], "big"):
                n = 3 + int.from_bytes(buf[1:3], "big")
                got.append((buf[:n], time.monotonic()))
                buf = buf[n:]
                os.write(master, bytes([voice.SYN_RECEIVED]))
                time.sleep(0.15)  # speaking
                os.write(master, bytes([voice.SYN_IDLE]))

    threading.Thread(target=chip, daemon=True).start()
    v = voice.Syn6288Voice(os.ttyname(slave), languages=("zh",), repeats=2, timeout=2)
    try:
        v.say(samples.call("A023", 3))
        v.say(samples.call("B101", 5))
        assert v.idle(10)
    finally:
        v.close()
        os.close(master)
        os.close(slave)
    frames = [f for f, _ in got]
    a, b = voice.syn6288_frame("请A零二三号到3号窗口办理"), voice.syn6288_frame("请B一零一号到5号窗口办理")
    assert frames == [a, a, b, b]
    times = [t for _, t in got]
    assert all(t2 - t1 >= 0.14 for t1, t2 in itertools.pairwise(times))  # never over the chip's voice
