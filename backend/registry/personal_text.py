"""The one personal-data filter for free text that reaches readers beyond its author and the child's
own workers: typical-case notices, prevention activities (read by every activity reader of the area and
sent to phones), supervision problems (read by market officers, police and member-unit clerks).

A text is refused when it holds an ID number, a mobile number, or the name of a person registered in
the writer's area: a child, a guardian (registry `Person`), a 附件2 person (`RiskPerson`), or a staff
member of an institution of the area (backend/staff_checks, whose background check a text may tell).
Numbers are matched in the normalised text (`normalise`) and in its skeleton (`skeleton`), names in the
skeleton, so spacing, punctuation, markup, invisible, combining or full-width characters, and digits
written another way (〇 or 零 for 0, 壹 for 1, Arabic-Indic ٤ for 4) do not carry a value past the
filter. Traditional characters for a name stored in simplified ones (劉志強 for 刘志强) are not matched.
The refusal names the field and the kind of data, never the person.

It lives in the registry because it reads the registry's names (core imports no domain package).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from functools import partial

from sqlalchemy import func, select
from sqlmodel import Session, col

from backend.accounts.principal import Principal
from backend.audit import service as audit
from backend.core.errors import InvalidInput
from backend.institutions.models import Institution
from backend.orgunits import service as orgunits
from backend.registry.models import Person, RiskPerson
from backend.sealing import service as sealing
from backend.staff_checks.models import StaffMember


class TextPersonalData(InvalidInput):
    """Free text shown beyond its author carries personal data (`field`, `kind`: id_number, phone, name)."""

    code = "text-personal-data"
    title_zh = "文字内容不能含有个人信息"
    title_en = "The text must not carry personal data"


# A resident ID (18 or 15 digits), a mainland mobile number (with a 86 / 0086 before it or not).
_RESIDENT_ID = re.compile(r"(?<!\d)(\d{17}[\dXx]|\d{15})(?![\dXx])")
_MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
# 86 / 0086 before a mobile number in the skeleton (its + is gone): dropped before any match, or
# 0086 199 0000 0006 would read as a 15-digit ID number.
_BARE_COUNTRY_CODE = re.compile(r"(?<!\d)(?:0086|86)(?=1[3-9]\d{9}(?!\d))")
# Spaces, dashes (any Unicode dash) and dots written between the digits of a number: 199 0000 0006,
# 990101-19800303-7712, 199.0000.0006.
_DIGIT_GAP = re.compile(r"(?<=\d)[\s.\-\u2010-\u2015\u2212\u2043\ufe58\ufe63\uff0d\u00b7\u30fb]+(?=[\dXx])")
_COUNTRY_CODE = re.compile(r"(?:\+|00)86(?=1[3-9]\d{9}(?!\d))")
# Chinese numerals written for digits: 演示儿童〇〇〇一 and the financial (大写) 演示儿童〇〇肆壹 for
# 演示儿童0041, with the traditional forms of 贰, 叁, 陆, and 幺, the 1 of numbers read aloud (幺三八…).
# Digits only: 十/拾 and 两 are not one digit.
_CHINESE_DIGITS = str.maketrans("〇零一二三四五六七八九壹贰貳叁參肆伍陆陸柒捌玖幺",
                                "001234567891223345667891")
# Markup tags (their letters are not read): 刘<b>志</b>强.
_MARKUP = re.compile(r"<[^<>]{0,40}>")
# Letters (Unicode L*) that show nothing: the Hangul fillers.
_INVISIBLE_LETTERS = frozenset("\u3164\u115f\u1160\uffa0")


def _ascii_digits(value: str) -> str:
    """Every decimal digit of any script (Unicode Nd: Arabic-Indic, Devanagari, full-width ...) as
    its ASCII digit: NFKC/NFKD fold only the full-width and styled ones."""
    return "".join(str(unicodedata.decimal(ch)) if ch > "\x7f" and unicodedata.category(ch) == "Nd" else ch
                   for ch in value)


def normalise(value: str) -> str:
    """The text as the number checks read it first: NFKC (full-width digits and letters become ASCII),
    digits of any script as ASCII, without format characters (Unicode Cf: zero-width spaces, joiners,
    soft hyphens), without spaces, dashes or dots between digits, and without a +86/0086 before a mobile
    number. Unlike `skeleton` it keeps a comma or a word between two numbers, so 编号5，13912345678
    still shows the mobile."""
    folded = _ascii_digits(unicodedata.normalize("NFKC", value))
    folded = "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")
    folded = _DIGIT_GAP.sub("", folded)
    return _COUNTRY_CODE.sub("", folded)


def skeleton(value: str) -> str:
    """The letters and digits of a text and nothing else: NFKD (full-width forms become ASCII, accents
    come apart), Chinese numerals (〇一二…, 零壹贰…) and digits of any script as ASCII digits, lower case,
    then only characters of Unicode category L* or N* are kept, without the Hangul fillers (U+3164,
    U+115F, U+1160, U+FFA0). Punctuation (刘/志/强, 刘、志强, 刘（志）强), symbols, markup brackets,
    spaces, combining marks, variation selectors, format characters and braille blanks all go: what is
    left is what a reader reads. Stored names are reduced the same way before they are looked for."""
    folded = _MARKUP.sub("", unicodedata.normalize("NFKD", value)).translate(_CHINESE_DIGITS)
    folded = _ascii_digits(folded).lower()
    return "".join(ch for ch in folded
                   if unicodedata.category(ch)[0] in "LN" and ch not in _INVISIBLE_LETTERS)


def _name_hit(session: Session, principal: Principal, text_skeletons: list[str]) -> int | None:
    """The index of the first text naming a registered person of the caller's area (a child, a
    guardian, a 附件2 person) or a staff member of an institution of the area: the skeleton of a stored
    name (of 2 characters or more) inside the skeleton of the text. The names are reduced in Python (a
    database has no Unicode categories), once for all the fields of a write."""
    queries = []
    for model in (Person, RiskPerson):
        # Sealed records (犯罪记录封存) are not there for this read either: a refusal naming the kind of
        # data would tell the writer that a name belongs to a sealed record.
        sealed_out = [sealing.unsealed(model)] if hasattr(model, "sealed") else []
        queries.append(select(col(model.name)).distinct().where(
            *sealed_out, orgunits.in_jurisdiction(principal, col(model.org_unit_id)),
            func.length(col(model.name)) >= 2))
    queries.append(select(col(StaffMember.name)).distinct().join(
        Institution, col(Institution.id) == col(StaffMember.institution_id)).where(
        orgunits.in_jurisdiction(principal, col(Institution.org_unit_id)), func.length(col(StaffMember.name)) >= 2))
    hits: set[int] = set()
    for query in queries:
        for name in session.execute(query).scalars():
            name_skeleton = skeleton(name or "")
            if len(name_skeleton) < 2:
                continue
            hits.update(i for i, text in enumerate(text_skeletons) if name_skeleton in text)
            if 0 in hits:
                return 0
    return min(hits) if hits else None


def _audit_refusal(session: Session, *, principal: Principal, record: str, field: str, kind: str) -> None:
    """The refusal is kept in the audit log (after the write is rolled back): a name refused tells the
    writer that a registered person carries it, so a run of guesses shows there, by whom."""
    audit.record(session, actor=principal, action="personal_text.refuse", object_type=record, object_id=None,
                 org_unit_id=principal.org_unit_id, details={"field": field, "kind": kind})


def refuse_personal_data(session: Session, principal: Principal, fields: Mapping[str, str | None], *,
                         record: str, error: type[InvalidInput] = TextPersonalData) -> None:
    """Refuse (422 `error`, default `text-personal-data`) a write whose free text carries an ID number,
    a mobile number or a registered person's name (see the module docstring); `fields` maps each field
    name as the client sent it to its text (None: not sent), `record` names the kind of record for the
    audit entry the refusal leaves. The first field holding any of them is named, with the kind."""
    named = [(name, value) for name, value in fields.items() if value]
    refusals = (("id_number", "含有疑似身份证号码，请删除", "holds what looks like an ID number"),
                ("phone", "含有疑似手机号码，请删除", "holds what looks like a mobile number"))
    bare: list[str] = []
    for name, value in named:
        folded, text_skeleton = normalise(value), _BARE_COUNTRY_CODE.sub("", skeleton(value))
        bare.append(text_skeleton)
        for kind, zh, en in refusals:
            pattern = _RESIDENT_ID if kind == "id_number" else _MOBILE
            if pattern.search(folded) or pattern.search(text_skeleton):
                raise error(f"“{name}”{zh}", f"'{name}' {en}", field=name, kind=kind,
                            aftermath=partial(_audit_refusal, principal=principal, record=record, field=name,
                                              kind=kind))
    hit = _name_hit(session, principal, bare) if bare else None
    if hit is not None:
        name = named[hit][0]
        raise error(f"“{name}”含有登记人员的姓名，请以“某某”代替", f"'{name}' holds the name of a registered "
                    "person: write 某某 instead", field=name, kind="name",
                    aftermath=partial(_audit_refusal, principal=principal, record=record, field=name, kind="name"))
