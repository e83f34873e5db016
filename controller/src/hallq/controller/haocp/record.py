"""The 好差评 record of one rating (pure): the province's JSON fields and the satisfaction code schemes.

Record fields follow the provincial interface and the national data set (GB/T 39046-2020, table 9):
``projectNo`` (办件编号), ``taskCode`` (事项编码), ``taskName``, ``satisfaction`` (满意度代码),
``assessTime`` (``YYYYMMDDThhmmss``), ``pf`` (评价渠道: 5 = 政务大厅其他终端), ``areaCode`` (行政区划),
``assessNumber`` (评价次数, 1), ``windowNo``, ``ticket``. The satisfaction code is mapped explicitly by
``scheme``: ``gbt39046`` (1 = 非常满意 … 5 = 非常不满意, the national data set) or ``reverse``
(5 = 非常满意 … 1 = 非常不满意, as some provinces use).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..config import HaocpSection

#: Satisfaction codes per scheme, best first (the order of ``hallq.shared.schemas.LEVELS``).
SCHEMES: dict[str, dict[str, str]] = {
    "gbt39046": {"very_satisfied": "1", "satisfied": "2", "basic": "3", "dissatisfied": "4",
                 "very_dissatisfied": "5"},
    "reverse": {"very_satisfied": "5", "satisfied": "4", "basic": "3", "dissatisfied": "2",
                "very_dissatisfied": "1"},
}
#: 评价渠道 (GB/T 39046): 1 PC, 2 mobile, 3 QR code, 4 hall tablet, 5 hall other terminal, 6 phone, 7 SMS.
CHANNELS = ("1", "2", "3", "4", "5", "6", "7")


# -- the code scheme, both ways ------------------------------------------------------------------------------
def satisfaction_code(level: str, scheme: str = "gbt39046") -> str:
    """The 好差评 satisfaction code of a level under ``scheme``."""
    try:
        return SCHEMES[scheme][level]
    except KeyError:
        raise ValueError(f"no satisfaction code for level {level!r} under scheme {scheme!r}") from None


def level_of(code: str, scheme: str = "gbt39046") -> str:
    """The level a satisfaction code stands for under ``scheme``."""
    for level, c in SCHEMES.get(scheme, {}).items():
        if c == str(code):
            return level
    raise ValueError(f"satisfaction code {code!r} means nothing under scheme {scheme!r}")


def assess_time(at: datetime) -> str:
    """``YYYYMMDDThhmmss`` in the hall's local time (``at`` already carries the hall's offset)."""
    return at.strftime("%Y%m%dT%H%M%S")


def idempotency_key(hall: str, day: str, ticket: str) -> str:
    return f"hallq-{hall}-{day.replace('-', '')}-{ticket}"


def record(*, hall: str, day: str, ticket: str, window: int, level: str, at: datetime, case_id: str | None,
           item_code: str | None, item_name: str | None, cfg: HaocpSection) -> dict[str, Any]:
    """The JSON record of one rating, as the province receives it."""
    return {
        "idempotencyKey": idempotency_key(hall, day, ticket),
        "projectNo": case_id or "",
        "taskCode": item_code or "",
        "taskName": item_name or "",
        "satisfaction": satisfaction_code(level, cfg.scheme),
        "assessTime": assess_time(at),
        "pf": cfg.channel,
        "areaCode": cfg.area_code,
        "assessNumber": 1,
        "windowNo": str(window),
        "ticket": ticket,
    }
