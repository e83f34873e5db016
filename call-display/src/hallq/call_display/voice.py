"""Voice: announcements built from clips (「请 A023 号到 3 号窗口办理」 and an English variant).

A **clip pack** is a folder of WAV files, so a hall can record its own voice::

    chime.wav
    zh/qing.wav zh/hao.wav zh/dao.wav zh/chuangkou.wav zh/banli.wav
    zh/0.wav … zh/9.wav zh/shi.wav zh/bai.wav         (零 一 … 九, 十, 百)
    zh/A.wav … zh/Z.wav                                 (letters as said in a Chinese sentence)
    en/number.wav en/please_go_to_window.wav
    en/0.wav … en/19.wav en/20.wav … en/90.wav en/hundred.wav
    en/A.wav … en/Z.wav

:func:`announcement` says which clips make an announcement (pure); :class:`MixerVoice` plays them with
pygame.mixer from one queue on one thread, so two calls never talk over each other; a recall is a call
like any other and is announced again. :func:`make_pack` makes a pack offline with espeak-ng (the
``cmn-latn-pinyin`` voice, fed tone-numbered pinyin, reads 请, 号 and 口 with the right tones where the
plain ``cmn`` voice does not). :class:`Syn6288Voice` drives a serial TTS chip instead.
"""

from __future__ import annotations

import logging
import math
import queue
import shutil
import struct
import subprocess
import threading
import time
import wave
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import serial
from hallq.shared.schemas import Call

from .led import to_gb2312

log = logging.getLogger(__name__)

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ZH_DIGITS_PINYIN = ["ling2", "yi1", "er4", "san1", "si4", "wu3", "liu4", "qi1", "ba1", "jiu3"]
ZH_DIGITS_HANZI = "零一二三四五六七八九"
ZH_WORDS_PINYIN = {"qing": "qing3", "hao": "hao4", "dao": "dao4", "chuangkou": "chuang1 kou3",
                   "banli": "ban4 li3", "shi": "shi2", "bai": "bai3"}
EN_NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
              "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
EN_TENS = {20: "twenty", 30: "thirty", 40: "forty", 50: "fifty", 60: "sixty", 70: "seventy", 80: "eighty",
           90: "ninety"}
EN_WORDS = {"number": "Number", "please_go_to_window": "please go to window", "hundred": "hundred"}

PINYIN_VOICE = "cmn-latn-pinyin"
ENGLISH_VOICE = "en-us"


class PackError(Exception):
    """A clip pack that lacks clips, or a clip that cannot be read."""


# -- which clips -------------------------------------------------------------------------------------------
def zh_number(n: int) -> list[str]:
    """A window number as said in Chinese: 3 → 三, 12 → 十二, 20 → 二十, 105 → 一百零五."""
    if not 0 <= n <= 999:
        raise ValueError(f"cannot say {n}")
    if n < 10:
        return [f"zh/{n}"]
    if n < 20:
        return ["zh/shi"] + ([f"zh/{n % 10}"] if n % 10 else [])
    if n < 100:
        return [f"zh/{n // 10}", "zh/shi"] + ([f"zh/{n % 10}"] if n % 10 else [])
    rest = n % 100
    out = [f"zh/{n // 100}", "zh/bai"]
    if rest == 0:
        return out
    if rest < 10:
        return [*out, "zh/0", f"zh/{rest}"]
    return out + [f"zh/{rest // 10}", "zh/shi"] + ([f"zh/{rest % 10}"] if rest % 10 else [])


def en_number(n: int) -> list[str]:
    """A window number in English: 3 → three, 12 → twelve, 42 → forty two, 105 → one hundred five."""
    if not 0 <= n <= 999:
        raise ValueError(f"cannot say {n}")
    if n < 20:
        return [f"en/{n}"]
    if n < 100:
        return [f"en/{n - n % 10}"] + ([f"en/{n % 10}"] if n % 10 else [])
    out = [f"en/{n // 100}", "en/hundred"]
    return out + (en_number(n % 100) if n % 100 else [])


def _spell(ticket: str, lang: str) -> list[str]:
    """A ticket number character by character: A023 → A 零 二 三 (zh) or A zero two three (en)."""
    return [f"{lang}/{ch}" for ch in ticket]


def sentence(call: Call, lang: str) -> list[str]:
    if lang == "zh":  # 请 A 零 二 三 号 到 三 号 窗口 办理
        return ["zh/qing", *_spell(call.ticket, "zh"), "zh/hao", "zh/dao", *zh_number(call.window), "zh/hao",
                "zh/chuangkou", "zh/banli"]
    if lang == "en":  # Number A zero two three, please go to window three
        return ["en/number", *_spell(call.ticket, "en"), "en/please_go_to_window", *en_number(call.window)]
    raise ValueError(f"no sentence for language {lang!r}")


def announcement(call: Call, languages: Iterable[str] = ("zh", "en"), repeats: int = 1) -> list[str]:
    """The clips of one announcement, in order: the chime, then each language's sentence, ``repeats`` times."""
    once = [clip for lang in languages for clip in sentence(call, lang)]
    return ["chime", *(once * repeats)]


def required_clips(languages: Iterable[str] = ("zh", "en")) -> list[str]:
    names = ["chime"]
    langs = list(languages)
    if "zh" in langs:
        names += [f"zh/{w}" for w in ZH_WORDS_PINYIN] + [f"zh/{d}" for d in range(10)]
        names += [f"zh/{c}" for c in LETTERS]
    if "en" in langs:
        names += [f"en/{w}" for w in EN_WORDS] + [f"en/{n}" for n in range(20)] + [f"en/{t}" for t in EN_TENS]
        names += [f"en/{c}" for c in LETTERS]
    return names


# -- the pack ------------------------------------------------------------------------------------------------
class ClipPack:
    def __init__(self, folder: str | Path, languages: Iterable[str] = ("zh", "en")):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise PackError(f"clip pack {self.folder} is not a folder (make one: hallq display voice-pack --out DIR)")
        missing = [n for n in required_clips(languages) if not self.path(n).is_file()]
        if missing:
            raise PackError(f"clip pack {self.folder} lacks {len(missing)} clips: {', '.join(missing[:12])}"
                            + (" …" if len(missing) > 12 else ""))

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.wav"


def _chime(path: Path, rate: int = 22050) -> None:
    """A two-tone chime (ding-dong), written as 16-bit mono WAV."""
    frames = bytearray()
    for freq, dur in ((880.0, 0.45), (698.46, 0.7)):
        n = int(rate * dur)
        for i in range(n):
            t = i / rate
            env = math.exp(-3.5 * t) * min(1.0, i / (rate * 0.01))
            v = env * (0.6 * math.sin(2 * math.pi * freq * t) + 0.2 * math.sin(4 * math.pi * freq * t))
            frames += struct.pack("<h", int(v * 0.8 * 32767))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))


def _trim(path: Path, threshold: int = 300, keep: float = 0.04) -> None:
    """Cut espeak-ng's leading and trailing silence, keeping ``keep`` seconds each side."""
    with wave.open(str(path), "rb") as r:
        params = r.getparams()
        data = r.readframes(r.getnframes())
    if params.sampwidth != 2 or params.nchannels != 1:
        return
    samples = struct.unpack(f"<{len(data) // 2}h", data)
    loud = [i for i, s in enumerate(samples) if abs(s) > threshold]
    if not loud:
        return
    pad = int(params.framerate * keep)
    a, b = max(0, loud[0] - pad), min(len(samples), loud[-1] + pad)
    with wave.open(str(path), "wb") as w:
        w.setparams(params)
        w.writeframes(data[a * 2 : b * 2])


def make_pack(out: str | Path, *, languages: Iterable[str] = ("zh", "en"), speed: int = 140,
              espeak: str | None = None) -> Path:
    """Make a clip pack offline with espeak-ng; returns the folder."""
    exe = espeak or shutil.which("espeak-ng")
    if not exe:
        raise PackError("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    folder = Path(out)
    langs = list(languages)
    jobs: list[tuple[str, str, str]] = []  # (clip, voice, text)
    if "zh" in langs:
        jobs += [(f"zh/{w}", PINYIN_VOICE, p) for w, p in ZH_WORDS_PINYIN.items()]
        jobs += [(f"zh/{d}", PINYIN_VOICE, ZH_DIGITS_PINYIN[d]) for d in range(10)]
        jobs += [(f"zh/{c}", ENGLISH_VOICE, c) for c in LETTERS]
    if "en" in langs:
        jobs += [(f"en/{w}", ENGLISH_VOICE, t) for w, t in EN_WORDS.items()]
        jobs += [(f"en/{n}", ENGLISH_VOICE, EN_NUMBERS[n]) for n in range(20)]
        jobs += [(f"en/{t}", ENGLISH_VOICE, w) for t, w in EN_TENS.items()]
        jobs += [(f"en/{c}", ENGLISH_VOICE, c) for c in LETTERS]
    for sub in {j[0].split("/")[0] for j in jobs}:
        (folder / sub).mkdir(parents=True, exist_ok=True)
    folder.mkdir(parents=True, exist_ok=True)

    def speak(job: tuple[str, str, str]) -> None:
        clip, voice, text = job
        path = folder / f"{clip}.wav"
        res = subprocess.run([exe, "-v", voice, "-s", str(speed), "-w", str(path), text],
                             capture_output=True, text=True, timeout=60)
        if res.returncode != 0 or not path.is_file():
            raise PackError(f"espeak-ng failed on {clip} ({voice} {text!r}): {res.stderr.strip()}")
        _trim(path)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(speak, jobs))
    _chime(folder / "chime.wav")
    (folder / "README.txt").write_text(
        "hallq voice clip pack (WAV files). Record your own voice by replacing any file with a WAV of\n"
        "the same name. zh/: 请 qing, 号 hao, 到 dao, 窗口 chuangkou, 办理 banli, 十 shi, 百 bai, digits 0-9\n"
        "(零 … 九), letters A-Z. en/: number, please_go_to_window, hundred, 0-19, 20-90 by tens, A-Z.\n"
        f"Made with espeak-ng ({PINYIN_VOICE} for Chinese, {ENGLISH_VOICE} for English).\n",
        encoding="utf-8")
    ClipPack(folder, langs)  # everything there?
    return folder


# -- playing ---------------------------------------------------------------------------------------------------
def init_mixer(frequency: int = 22050, channels: int = 1) -> None:
    import pygame.mixer

    if not pygame.mixer.get_init():
        pygame.mixer.init(frequency=frequency, size=-16, channels=channels, buffer=512)


class ClipBank:
    """The pack's clips loaded as pygame Sounds in the mixer's format (so packs of mixed WAV formats work)."""

    def __init__(self, pack: ClipPack, names: Iterable[str]):
        import pygame.mixer

        init_mixer()
        self.pack = pack
        self.format = pygame.mixer.get_init()  # (frequency, size, channels)
        self._raw: dict[str, bytes] = {}
        for n in names:
            try:
                self._raw[n] = pygame.mixer.Sound(str(pack.path(n))).get_raw()
            except Exception as exc:  # pygame.error: a file that is not a WAV it can read
                raise PackError(f"cannot read clip {pack.path(n)}: {exc}") from None

    def raw(self, clips: Iterable[str]) -> bytes:
        return b"".join(self._raw[c] for c in clips)

    def seconds(self, nbytes: int) -> float:
        freq, size, channels = self.format
        return nbytes / (freq * (abs(size) // 8) * channels)


@dataclass(frozen=True, slots=True)
class Played:
    ticket: str
    window: int
    recall: int
    clips: tuple[str, ...]
    start: float  # time.monotonic()
    end: float


class Voice(Protocol):
    """The voice port: ``say(call)`` queues an announcement and returns at once."""

    played: list[Played]
    errors: int

    def say(self, call: Call) -> None: ...

    def close(self) -> None: ...


class _QueuedVoice(ABC):
    """One worker thread speaks one announcement at a time, in order."""

    def __init__(self, on_start: Callable[[Call, float], None] | None = None, max_waiting: int = 20):
        self.on_start = on_start
        self.played: list[Played] = []
        self.errors = 0
        self._q: queue.Queue[Call | None] = queue.Queue()
        self._max_waiting = max_waiting
        self._thread = threading.Thread(target=self._run, name="voice", daemon=True)
        self._thread.start()

    def say(self, call: Call) -> None:
        if self._q.qsize() >= self._max_waiting:  # a backlog helps nobody: drop the oldest waiting call
            try:
                dropped = self._q.get_nowait()
                log.warning("voice backlog: not announcing %s", dropped.ticket if dropped else None)
            except queue.Empty:
                pass
        self._q.put(call)

    def idle(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued has been said."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._q.unfinished_tasks == 0:
                return True
            time.sleep(0.01)
        return False

    def _run(self) -> None:
        while True:
            call = self._q.get()
            try:
                if call is None:
                    return
                self._speak(call)
            except Exception:
                self.errors += 1
                log.exception("could not announce %s", call.ticket if call else None)
            finally:
                self._q.task_done()

    @abstractmethod
    def _speak(self, call: Call) -> None:
        """Say one announcement, returning when it has been said."""

    def close(self) -> None:
        self._q.put(None)
        self._thread.join(5)


class MixerVoice(_QueuedVoice):
    """Announcements from a clip pack through pygame.mixer."""

    def __init__(self, pack: ClipPack, *, languages: Iterable[str] = ("zh", "en"), repeats: int = 1,
                 volume: float = 1.0, on_start: Callable[[Call, float], None] | None = None):
        self.languages = tuple(languages)
        self.repeats = repeats
        self.volume = volume
        self.bank = ClipBank(pack, required_clips(self.languages))
        import pygame.mixer

        self._channel = pygame.mixer.Channel(0)
        super().__init__(on_start)

    def _speak(self, call: Call) -> None:
        import pygame.mixer

        clips = announcement(call, self.languages, self.repeats)
        raw = self.bank.raw(clips)
        sound = pygame.mixer.Sound(buffer=raw)
        sound.set_volume(self.volume)
        length = self.bank.seconds(len(raw))
        start = time.monotonic()
        self._channel.play(sound)
        if self.on_start:
            self.on_start(call, start)
        # Wait for the end: the channel says so; the clip length bounds the wait if the device stalls.
        deadline = start + length + 2.0
        time.sleep(max(0.0, length - 0.05))
        while self._channel.get_busy() and time.monotonic() < deadline:
            time.sleep(0.005)
        self.played.append(Played(call.ticket, call.window, call.recall, tuple(clips), start, time.monotonic()))
        del self.played[:-100]


def render_wav(call: Call, pack: ClipPack, out: str | Path, *, languages: Iterable[str] = ("zh", "en"),
               repeats: int = 1) -> Path:
    """Write one announcement to a WAV file (for technicians: ``hallq display announce``)."""
    langs = tuple(languages)
    clips = announcement(call, langs, repeats)
    bank = ClipBank(pack, sorted(set(clips)))
    freq, size, channels = bank.format
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(out), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(abs(size) // 8)
        w.setframerate(freq)
        w.writeframes(bank.raw(clips))
    return out


# -- a serial TTS chip -------------------------------------------------------------------------------------------
SYN_HEADER = 0xFD
SYN_SPEAK = 0x01
SYN_GB2312 = 0x00
SYN_RECEIVED = 0x41  # the chip took a frame
SYN_FRAME_ERROR = 0x45  # the chip could not read a frame
SYN_BUSY = 0x4E  # still speaking
SYN_IDLE = 0x4F  # done speaking


def syn6288_frame(text: str, *, music: int = 0) -> bytes:
    """A SYN6288-style "speak" frame::

        0xFD | length (2 bytes, big-endian) | 0x01 speak | parameter | GB2312 text | XOR

    ``length`` counts the command, the parameter, the text and the checksum; the parameter's low three
    bits are the encoding (0 = GB2312) and its high five bits a background tune (0 = none); the checksum
    is the XOR of every byte before it. The chip answers 0x41 when it took the frame and 0x4F when it has
    finished speaking (0x45: it could not read the frame)."""
    if not 0 <= music <= 15:
        raise ValueError("background tune is 0-15")
    body = to_gb2312(text)
    if len(body) > 200:
        raise ValueError("a SYN6288 frame takes at most 200 bytes of text")
    frame = bytes([SYN_HEADER]) + (len(body) + 3).to_bytes(2, "big") + bytes([SYN_SPEAK, (music << 3) | SYN_GB2312])
    frame += body
    x = 0
    for b in frame:
        x ^= b
    return frame + bytes([x])


def zh_text(call: Call) -> str:
    """The Chinese announcement as text, digits spelt out so the chip reads A023 as A零二三, not A二十三."""
    ticket = "".join(ZH_DIGITS_HANZI[int(c)] if c.isdigit() else c for c in call.ticket)
    return f"请{ticket}号到{call.window}号窗口办理"


def en_text(call: Call) -> str:
    return f"Number {' '.join(call.ticket)}, please go to window {call.window}"


class Syn6288Voice(_QueuedVoice):
    def __init__(self, url: str, *, baudrate: int = 9600, languages: Iterable[str] = ("zh",), repeats: int = 1,
                 timeout: float = 15.0, port: Any = None, on_start: Callable[[Call, float], None] | None = None):
        self.port = port if port is not None else serial.serial_for_url(url, baudrate=baudrate, timeout=0.1)
        self.languages = tuple(languages)
        self.repeats = repeats
        self.timeout = timeout
        super().__init__(on_start)

    def _wait_idle(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            b = self.port.read(1)
            if not b:
                continue
            if b[0] == SYN_IDLE:
                return
            if b[0] == SYN_FRAME_ERROR:
                raise OSError("the TTS chip could not read the frame")
        log.warning("TTS chip did not report the end of the announcement within %.0f s", self.timeout)

    def _speak(self, call: Call) -> None:
        texts = [zh_text(call) if lang == "zh" else en_text(call) for lang in self.languages] * self.repeats
        start = time.monotonic()
        clips: list[str] = []
        for i, text in enumerate(texts):
            self.port.reset_input_buffer()
            self.port.write(syn6288_frame(text))
            self.port.flush()
            if i == 0 and self.on_start:
                self.on_start(call, start)
            clips.append(text)
            self._wait_idle(time.monotonic() + self.timeout)
        self.played.append(Played(call.ticket, call.window, call.recall, tuple(clips), start, time.monotonic()))

    def close(self) -> None:
        super().close()
        self.port.close()
