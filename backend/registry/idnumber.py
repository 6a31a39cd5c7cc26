"""Resident ID numbers (公民身份号码, GB 11643-1999): 6-digit region code, 8-digit birth date,
3-digit sequence (odd for men), and an ISO 7064 MOD 11-2 check character."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from backend.core import identifiers
from backend.core.errors import InvalidInput

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
# ASCII digits only: \d (and int()) would also take Arabic-Indic, Devanagari ... digits.
_SHAPE = re.compile(r"[0-9]{17}[0-9X]")


class Sex(StrEnum):
    male = "male"  # 男
    female = "female"  # 女

    @property
    def zh(self) -> str:
        return "男" if self is Sex.male else "女"


class InvalidIdNumber(InvalidInput):
    code = "invalid-id-number"
    title_zh = "身份证号码有误"
    title_en = "Invalid resident ID number"


@dataclass(frozen=True)
class IdNumber:
    """A checked ID number and what it says about its holder."""

    value: str
    region: str
    birth_date: date
    sex: Sex

    @property
    def masked(self) -> str:
        return mask(self.value)

    def age_on(self, day: date) -> int:
        years = day.year - self.birth_date.year
        return years - ((day.month, day.day) < (self.birth_date.month, self.birth_date.day))


def check_character(first17: str) -> str:
    """The MOD 11-2 check character for the first 17 digits."""
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def normalise(raw: str) -> str:
    """The canonical spelling (backend/core/identifiers.py): NFKC, no whitespace, upper-case X."""
    return identifiers.fold(raw)


def parse(raw: str, *, today: date | None = None) -> IdNumber:
    """Validate shape, birth date and checksum; raise InvalidIdNumber with an actionable reason."""
    value = normalise(raw)
    if not _SHAPE.fullmatch(value):
        raise InvalidIdNumber(
            "身份证号码应为18位，前17位为数字，最后一位为数字或X",
            "An ID number has 18 characters: 17 digits then a digit or X",
            field="id_number",
        )
    try:
        birth = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError as exc:
        raise InvalidIdNumber(
            f"身份证号码中的出生日期{value[6:14]}不存在，请核对第7-14位",
            f"The birth date {value[6:14]} in the ID number does not exist",
            field="id_number",
        ) from exc
    if birth.year < 1900 or (today is not None and birth > today):
        raise InvalidIdNumber(
            f"身份证号码中的出生日期{value[6:14]}不合理，请核对第7-14位",
            f"The birth date {value[6:14]} in the ID number is not plausible",
            field="id_number",
        )
    if check_character(value[:17]) != value[17]:
        raise InvalidIdNumber(
            "身份证号码校验位不正确，请逐位核对号码（常见为抄错一位）",
            "The ID number's check character is wrong; a digit was probably mistyped",
            field="id_number",
        )
    sex = Sex.male if int(value[16]) % 2 == 1 else Sex.female
    return IdNumber(value=value, region=value[:6], birth_date=birth, sex=sex)


def parse_for_person(
    raw: str, *, today: date, sex: Sex | None = None, birth_date: date | None = None, minor: bool = False
) -> IdNumber:
    """Parse and cross-check with the sex and birth date recorded beside it; a child must be under 18."""
    parsed = parse(raw, today=today)
    if sex is not None and sex is not parsed.sex:
        raise InvalidIdNumber(
            f"身份证号码显示性别为{parsed.sex.zh}，与填写的{sex.zh}不符",
            f"The ID number says {parsed.sex.value}, the record says {sex.value}",
            field="sex",
        )
    if birth_date is not None and birth_date != parsed.birth_date:
        raise InvalidIdNumber(
            f"身份证号码中的出生日期为{parsed.birth_date.isoformat()}，与填写的不符",
            "The birth date in the ID number differs from the recorded one",
            field="birth_date",
        )
    if minor and parsed.age_on(today) >= 18:
        raise InvalidIdNumber(
            f"该身份证号码持有人已满18周岁（出生于{parsed.birth_date.isoformat()}），不是未成年人",
            "The holder of this ID number is 18 or older, not a minor",
            field="id_number",
        )
    return parsed


def mask(value: str) -> str:
    """The region (first 6 characters), the rest starred: 990101************.

    No digit of the birth date or the sequence: beside a birth date (which many records carry) the
    old form, first 6 and last 4, left nothing hidden but the date, so it rebuilt the whole number."""
    if len(value) <= 6:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 6)


def is_masked(value: str) -> bool:
    """A masked form sent back (this one or an older one): never a number, since no number has a star."""
    return "*" in value


def make(region: str, birth: date, sequence: int) -> str:
    """A checksum-valid ID number (for synthetic demo and test data)."""
    first17 = f"{region}{birth:%Y%m%d}{sequence:03d}"
    return first17 + check_character(first17)


def mask_name(name: str | None) -> str | None:
    """姓 + asterisks: enough to knock on the right door, not a full name."""
    if not name:
        return None
    return name[0] + "*" * max(1, len(name) - 1)
