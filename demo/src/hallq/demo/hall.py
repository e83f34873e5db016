"""The simulated hall's shape taken from a hall configuration, with per-category behaviour.

The hall file says which categories and windows there are; how busy each category is and how long its
services take is not in the file, so :data:`PROFILES` gives that for the categories of the sample hall
(``controller/examples/hall.toml``) and :func:`default_profile` a plain middle for any other category.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .model import CategoryProfile, HallShape, Item, hhmm_to_s

if TYPE_CHECKING:
    from hallq.controller.config import HallFile

#: Behaviour of the sample hall's categories, by code: share of the visits, median service minutes,
#: log-normal shape, and a few service items (事项) for the cases.
PROFILES: dict[str, CategoryProfile] = {
    p.code: p
    for p in (
        CategoryProfile("A", 0.28, 5.0, 0.55, (
            Item("SB-0101", "城乡居民养老保险参保登记"), Item("YB-0203", "医保关系转移接续"),
            Item("SB-0307", "社会保障卡补领"))),
        CategoryProfile("B", 0.14, 12.0, 0.6, (
            Item("BDC-0001", "不动产登记资料查询"), Item("BDC-0102", "国有建设用地使用权及房屋所有权转移登记"),
            Item("BDC-0205", "抵押权登记"))),
        CategoryProfile("C", 0.18, 6.0, 0.5, (
            Item("HJ-0010", "户口迁移"), Item("HJ-0021", "居民身份证换领"), Item("HJ-0033", "出生登记"))),
        CategoryProfile("D", 0.12, 10.0, 0.6, (
            Item("SC-0100", "个体工商户设立登记"), Item("SC-0201", "企业变更登记"),
            Item("SC-0305", "食品经营许可"))),
        CategoryProfile("E", 0.16, 7.0, 0.55, (
            Item("SW-0011", "发票领用"), Item("SW-0102", "个人所得税汇算清缴"), Item("SW-0210", "完税证明开具"))),
        CategoryProfile("F", 0.12, 4.0, 0.5, (
            Item("GJJ-0001", "住房公积金提取"), Item("GJJ-0005", "公积金缴存证明"))),
    )
}


def default_profile(code: str, name: str) -> CategoryProfile:
    """A category the table does not know: an average share and a six-minute median service."""
    return CategoryProfile(code, 0.2, 6.0, 0.55, (Item(f"{code}-0001", name),))


def shape_of(cfg: HallFile, profiles: dict[str, CategoryProfile] | None = None) -> HallShape:
    """The simulation's view of a (checked) hall config."""
    table = PROFILES if profiles is None else profiles
    cats = []
    for c in cfg.categories:
        p = table.get(c.code)
        cats.append(p if p is not None else default_profile(c.code, c.name))
    hours = tuple((hhmm_to_s(a), hhmm_to_s(b)) for a, b in cfg.hall.hours) or ((0.0, 86400.0),)
    return HallShape(tuple(cats), {w.no: tuple(w.categories) for w in cfg.windows}, hours)
