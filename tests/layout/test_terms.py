"""Issue 13: one term for one thing, from docs/glossary.md, on every screen, page and report.

The demo's live view and the report once said 转办/转号, 未开/未开放, 等待/等候; the dashboard later
brought back 未开, 办理中 and 满意度 for what the hall screen and the report call 未开放, 正在办理 and 满意率.
This scans every text a person reads in the parts' sources (Python, templates, scripts) for the words the
glossary does not use."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: variant -> the glossary's word for it
VARIANTS = {
    r"转办": "转号",
    r"未开(?!放)": "未开放",
    r"等待": "等候",
    r"满意度(?!代码)": "满意率",
    r"办理中": "正在办理",
    r"未签到": "未开放",
}
PATTERN = re.compile("|".join(f"(?:{v})" for v in VARIANTS))


def test_the_glossary_names_the_words_checked_here():
    glossary = (ROOT / "docs" / "glossary.md").read_text(encoding="utf-8")
    for word in set(VARIANTS.values()):
        assert word in glossary, word


def test_no_part_uses_a_word_the_glossary_does_not():
    found = []
    for src in sorted(ROOT.glob("*/src/hallq/**/*")):
        if src.suffix not in (".py", ".html", ".js", ".txt") or not src.is_file():
            continue
        for n, line in enumerate(src.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for m in PATTERN.finditer(line):
                want = next(w for v, w in VARIANTS.items() if re.fullmatch(v, m.group(0)))
                found.append(f"{src.relative_to(ROOT)}:{n}: {m.group(0)!r} (the glossary says {want})")
    assert not found, "\n".join(found)
