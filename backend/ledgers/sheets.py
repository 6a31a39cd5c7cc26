"""The three ledgers of seed 003 (附件1/2/3): titles and headers exactly as printed, in order."""

from __future__ import annotations

import unicodedata
from enum import StrEnum


class Annex(StrEnum):
    key_minors = "1"  # 附件1 重点未成年人摸排台账
    risk_persons = "2"  # 附件2 性侵未成年人风险重点人群摸排台账
    vulnerable_minors = "3"  # 附件3 易受性侵风险的未成年人摸排台账


TITLES: dict[Annex, str] = {
    Annex.key_minors: "重点未成年人摸排台账",
    Annex.risk_persons: "性侵未成年人风险重点人群摸排台账",
    Annex.vulnerable_minors: "易受性侵风险的未成年人摸排台账",
}

HEADERS: dict[Annex, tuple[str, ...]] = {
    Annex.key_minors: (
        "序号",
        "未成年人姓名",
        "身份证号码",
        "性别",
        "户籍地",
        "常住地",
        "是否在读",
        "联系方式",
        "分类",
        "具体表现",
        "监护人姓名",
        "监护人联系方式",
        "专班人员及联系方式",
        "帮扶措施",
        "综合研判风险等级",
    ),
    Annex.risk_persons: (
        "序号",
        "姓名",
        "身份证号码",
        "性别",
        "户籍地",
        "常住地",
        "联系方式",
        "分类",
        "综合研判风险等级",
        "管控措施",
    ),
    Annex.vulnerable_minors: (
        "序号",
        "姓名",
        "身份证号码",
        "性别",
        "户籍地",
        "常住地",
        "联系电话",
        "是否在读",
        "监护人姓名",
        "联系电话",
        "专班人员及联系方式",
        "帮扶措施",
    ),
}


# Other names clerks give the printed columns, by annex and column index (the printed name is always
# accepted). 附件3 prints 联系电话 twice: the child's, then (after 监护人姓名) the guardian's.
_CONTACT = ("联系方式", "联系电话", "电话", "手机", "手机号", "手机号码")
_GUARDIAN_CONTACT = ("监护人联系方式", "监护人联系电话", "监护人电话", "监护人手机")
_COMMON = {2: ("身份证号", "身份证", "公民身份号码", "身份证件号码", "证件号码"), 3: ("性别",), 0: ("编号",)}
ALIASES: dict[Annex, dict[int, tuple[str, ...]]] = {
    Annex.key_minors: {**_COMMON, 1: ("姓名", "儿童姓名"), 6: ("在读情况", "就学情况", "是否在校"), 7: _CONTACT,
                       11: _GUARDIAN_CONTACT, 12: ("专班人员", "专班人员联系方式"), 14: ("风险等级", "研判风险等级")},
    Annex.risk_persons: {**_COMMON, 6: _CONTACT, 8: ("风险等级", "研判风险等级")},
    Annex.vulnerable_minors: {**_COMMON, 1: ("未成年人姓名", "儿童姓名"), 6: _CONTACT,
                              7: ("在读情况", "就学情况", "是否在校"), 9: _GUARDIAN_CONTACT,
                              10: ("专班人员", "专班人员联系方式")},
}
# Columns a clerk may add that the importer checks against the ID number (never stored from the sheet).
BIRTH_DATE = "出生日期"
EXTRA_CHECKED = {BIRTH_DATE: ("出生日期", "出生年月日", "出生年月")}


def header_key(cell: object) -> str:
    """A header cell as compared on import: NFKC (full-width punctuation and letters made ASCII), no
    spaces or line breaks, no required-marks, without the choices the printed sheets add after '：' or
    '（' (综合研判风险等级（低风险、一般风险…）)."""
    text = "".join(unicodedata.normalize("NFKC", str(cell if cell is not None else "")).split())
    for stop in (":", "(", "[", "【", "〔"):
        text = text.split(stop, 1)[0]
    return text.strip("*※★#.。、")


def accepted_keys(annex: Annex, index: int) -> set[str]:
    """The header keys that name column `index` of `annex`."""
    return {header_key(HEADERS[annex][index]), *(header_key(a) for a in ALIASES[annex].get(index, ()))}
