"""Ledger export (streamed .xlsx, scoped, audited), and what export and import share (the import is in
backend/ledgers/importing.py)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts import scope
from backend.accounts.permissions import Action
from backend.accounts.principal import Principal
from backend.audit import disclosure
from backend.core import clock, crypto, workbook
from backend.core.errors import InvalidInput
from backend.ledgers.sheets import HEADERS, TITLES, Annex
from backend.orgunits import service as orgunits
from backend.registry import idnumber
from backend.registry import service as registry
from backend.registry.models import (
    RISK_PERSON_CATEGORY_ZH,
    Guardianship,
    Person,
    PersonRole,
    RiskPerson,
    RiskPersonCategory,
)
from backend.sealing import service as sealing


class LedgerInvalid(InvalidInput):
    code = "ledger-invalid"
    title_zh = "台账内容有误"
    title_en = "The ledger has errors"


def _require(principal: Principal, annex: Annex, *, write: bool) -> None:
    # The hidden actions first: whoever may not see the records learns nothing (404), not even a 403.
    if annex is Annex.risk_persons:
        principal.require(Action.risk_person_read)
        principal.require(Action.risk_person_write if write else Action.ledger_export)
    else:
        principal.require(Action.child_read)
        principal.require(Action.child_write if write else Action.ledger_export)
    principal.require(Action.ledger_import if write else Action.ledger_export)


# ---------------------------------------------------------------- export


def _yes_no(value: bool | None) -> str:
    return "" if value is None else ("是" if value else "否")


def _sex(value: str | None) -> str:
    return {"male": "男", "female": "女"}.get(value or "", "")


def _id_cell(cipher: str | None, masked: str | None, reveal: bool) -> str:
    if reveal and cipher:
        return crypto.decrypt(cipher)
    # Masked again: whatever form was stored, a masked export carries the region only.
    return idnumber.mask(masked) if masked else ""


def _child_rows(session: Session, principal: Principal, annex: Annex, reveal: bool) -> Iterator[list[Any]]:
    flag = col(Person.key_minor) if annex is Annex.key_minors else col(Person.vulnerable)
    query = (
        select(Person)
        .where(
            col(Person.role) == PersonRole.child.value,
            col(Person.retired_at).is_(None),  # grown up and gone (backend/registry/retention.py)
            flag.is_(True),
            scope.visible(principal, Person),
        )
        .order_by(col(Person.id))
        .execution_options(yield_per=1000)
    )
    n = 0
    batch: list[Person] = []

    def flush(people: list[Person]) -> Iterator[list[Any]]:
        nonlocal n
        ids = [p.id for p in people if p.id is not None]
        guardians = registry.guardians_of(session, ids)
        disclosure.record(disclosure.PERSON, ids)  # the children, and their guardians by name below
        disclosure.record(disclosure.PERSON, session.execute(
            select(col(Guardianship.guardian_id)).where(col(Guardianship.child_id).in_(ids))).scalars())
        for p in people:
            n += 1
            gs = guardians.get(p.id or 0, [])
            g_names = "、".join(g["name"] for g in gs)
            # One phone per guardian in the order of the names, “无” for one without (as the import reads it).
            g_contacts = "、".join(g["contact"] or "无" for g in gs) if any(g["contact"] for g in gs) else ""
            idc = _id_cell(p.id_cipher, p.id_masked, reveal)
            if annex is Annex.key_minors:
                yield [
                    n,
                    p.name,
                    idc,
                    _sex(p.sex),
                    p.hukou_place,
                    p.residence,
                    _yes_no(p.in_school),
                    p.contact,
                    "、".join(p.categories),
                    p.signs,
                    g_names,
                    g_contacts,
                    p.task_force,
                    p.assistance,
                    p.risk_level,
                ]
            else:
                yield [
                    n,
                    p.name,
                    idc,
                    _sex(p.sex),
                    p.hukou_place,
                    p.residence,
                    p.contact,
                    _yes_no(p.in_school),
                    g_names,
                    g_contacts,
                    p.task_force,
                    p.assistance,
                ]

    for person in session.execute(query).scalars():
        batch.append(person)
        if len(batch) == 1000:
            yield from flush(batch)
            batch = []
    if batch:
        yield from flush(batch)


def _risk_person_rows(session: Session, principal: Principal, reveal: bool) -> Iterator[list[Any]]:
    query = (
        select(RiskPerson)
        .where(orgunits.in_jurisdiction(principal, col(RiskPerson.org_unit_id)), sealing.unsealed(RiskPerson))
        .order_by(col(RiskPerson.id))
        .execution_options(yield_per=1000)
    )
    for n, r in enumerate(session.execute(query).scalars(), start=1):
        disclosure.record(disclosure.RISK_PERSON, [r.id])
        cats = "、".join(RISK_PERSON_CATEGORY_ZH[RiskPersonCategory(c)] for c in r.categories)
        yield [
            n,
            r.name,
            _id_cell(r.id_cipher, r.id_masked, reveal),
            _sex(r.sex),
            r.hukou_place,
            r.residence,
            r.contact,
            cats,
            r.risk_level,
            r.control_measures,
        ]


# The printed layout of seed 003: a "附件N：" row and the title above the header, and the option lists
# in the headers of 分类 and 综合研判风险等级 as printed. The importer (importing.py) finds the header
# in the first rows of a sheet and reads a header cell up to its first '：' or '（' (sheets.header_key),
# so it reads either layout; False writes the bare header in row 1.
PRINTED_LAYOUT = True
PRINTED_HEADERS: dict[Annex, dict[str, str]] = {
    Annex.key_minors: {
        "分类": "分类：严重不良行为、不良行为、心理困境、家庭监护困境、生活困境",
        "综合研判风险等级": "综合研判风险等级（低风险、一般风险、较大风险、重大风险）",
    },
    Annex.risk_persons: {
        "分类": "分类：1、性侵犯罪前科刑满释放人员；2、社区矫正对象；3、流浪乞讨人员；4、涉黄涉毒人员；"
                "5、性病患者；6、与继女（孙女）共同生活男性；7、因组织介绍强制卖淫被公安机关处理过人员。",
    },
    Annex.vulnerable_minors: {},
}
# Column widths in characters by header; the rest get 14.
_WIDTHS = {"序号": 6, "身份证号码": 22, "性别": 6, "是否在读": 9, "分类": 30, "具体表现": 24, "帮扶措施": 24,
           "管控措施": 24, "专班人员及联系方式": 20, "综合研判风险等级": 18, "户籍地": 18, "常住地": 18}
# Identifier columns: always text, whatever type the value has.
_IDENTIFIERS = {"身份证号码", "联系方式", "监护人联系方式", "联系电话", "专班人员及联系方式"}


def ledger_table(annex: Annex, rows: Iterator[list[Any]], *, printed: bool) -> workbook.Table:
    """The sheet of 附件N: header (and, in the printed layout, the 附件N row and the title above it)."""
    header = list(HEADERS[annex])
    shown = [PRINTED_HEADERS[annex].get(h, h) for h in header] if printed else header
    return workbook.Table(
        title=TITLES[annex],
        header=shown,
        rows=rows,
        captions=[f"附件{annex.value}：", TITLES[annex]] if printed else [],
        text_columns=frozenset(i for i, h in enumerate(header) if h in _IDENTIFIERS),
        widths=[_WIDTHS.get(h, 14) for h in header],
    )


@dataclass
class ExportResult:
    path: Path
    filename: str
    rows: int


def export(session: Session, principal: Principal, annex: Annex, *, masked: bool = False) -> ExportResult:
    """Write the ledger to a temporary .xlsx, row by row (write-only workbook: constant memory). ID
    numbers are full only for a role that may reveal them and did not ask for the masked form."""
    _require(principal, annex, write=False)
    reveal = principal.can(Action.child_reveal_id) and not masked
    rows = (
        _risk_person_rows(session, principal, reveal)
        if annex is Annex.risk_persons
        else _child_rows(session, principal, annex, reveal)
    )
    table = ledger_table(annex, rows, printed=PRINTED_LAYOUT)
    handle = tempfile.NamedTemporaryFile(prefix="hulei-ledger-", suffix=".xlsx", delete=False)  # noqa: SIM115
    handle.close()
    workbook.write([table], handle.name)
    count = table.written
    disclosure.event(session, "ledger.export", actor=principal, object_type="ledger", object_id=annex.value,
                     org_unit_id=principal.org_unit_id, details={"rows": count, "full_id_numbers": reveal})
    stamp = clock.china_date(clock.now()).strftime("%Y%m%d")
    return ExportResult(Path(handle.name), f"附件{annex.value}-{TITLES[annex]}-{stamp}.xlsx", count)
