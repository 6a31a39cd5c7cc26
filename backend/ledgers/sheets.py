"""The three ledgers of seed 003 (附件1/2/3): titles and headers exactly as printed, in order."""

from __future__ import annotations

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


def header_key(cell: object) -> str:
    """A header cell as compared on import: the printed sheets add the choices after '：' or '（'."""
    text = str(cell or "").strip().replace(" ", "")
    for stop in ("：", ":", "（", "("):
        text = text.split(stop, 1)[0]
    return text
