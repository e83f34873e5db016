"""Charts as SVG drawn on the server (pure): they print on A4 as they show on screen, with no chart library."""

from __future__ import annotations

from html import escape

COLORS = {"issued": "#0b5cad", "called": "#7aa7d8", "served": "#1b7f3b", "avg": "#b46900", "need": "#b3261e",
          "have": "#7aa7d8"}


def _nice_max(v: float) -> int:
    if v <= 5:
        return 5
    for step in (10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000):
        if v <= step:
            return step
    return int(v) + 1


def bars(slots: list[str], series: list[tuple[str, list[float]]], line: tuple[str, list[float | None]] | None = None,
         *, width: int = 900, height: int = 260, label: str = "") -> str:
    """Grouped bars per slot (``series``: name, values) and an optional dashed line (name, values)."""
    left, right, top, bottom = 38, 8, 10, 34
    n = max(len(slots), 1)
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = max([v for _, vs in series for v in vs] + [v for v in (line[1] if line else []) if v is not None]
                    + [1])
    ymax = _nice_max(top_value)
    group = plot_w / n
    k = max(len(series), 1)
    bar_w = max(group * 0.8 / k, 1.0)
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
           f'xmlns="http://www.w3.org/2000/svg">']
    for i in range(5):
        v = ymax * i / 4
        y = top + plot_h - plot_h * i / 4
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#e3e8ee"/>')
        out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{v:g}</text>')
    for j, (name, values) in enumerate(series):
        color = COLORS.get(name, "#888")
        for i, v in enumerate(values):
            if not v:
                continue
            h = plot_h * v / ymax
            x = left + group * i + group * 0.1 + bar_w * j
            out.append(f'<rect class="bar-{escape(name)}" x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" '
                       f'height="{h:.1f}" fill="{color}"><title>{escape(slots[i])} {escape(name)} {v:g}</title></rect>')
    if line is not None:
        name, values = line
        pts = [(left + group * (i + 0.5), top + plot_h - plot_h * v / ymax) for i, v in enumerate(values) if v is not None]
        if pts:
            d = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            out.append(f'<polyline class="line-{escape(name)}" points="{d}" fill="none" stroke="{COLORS.get(name, "#333")}" '
                       'stroke-width="2" stroke-dasharray="5 3"/>')
    every = max(1, round(n / 12))
    for i, s in enumerate(slots):
        if i % every == 0:
            x = left + group * (i + 0.5)
            out.append(f'<text x="{x:.1f}" y="{height - bottom + 16}" text-anchor="middle">{escape(s)}</text>')
    out.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#9aa7b4"/>')
    out.append("</svg>")
    return "".join(out)
