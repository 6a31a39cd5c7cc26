"""The national list of activity types (seed 001-004's 宣传教育 forms); counties add their own rows."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TypeName:
    code: str
    name_zh: str
    name_en: str


NATIONAL: tuple[TypeName, ...] = (
    TypeName("campus", "进校园", "School visit"),
    TypeName("door_to_door", "进村入户", "Door to door in villages"),
    TypeName("market_day", "赶集普法", "Market-day legal education"),
    TypeName("six_ones", "六个一", "Six-ones school activities"),
    TypeName("legal_vice_principal", "法治副校长讲座", "Legal vice-principal lecture"),
    TypeName("hu_hua", "护花绽放", "Hu Hua Zhan Fang (girls' self-protection)"),
    TypeName("parent_class", "家长课堂", "Parents' class"),
    TypeName("other", "其他", "Other"),
)
NATIONAL_BY_CODE: dict[str, TypeName] = {t.code: t for t in NATIONAL}
