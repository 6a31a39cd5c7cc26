"""Export then import is the identity: the town's own 附件1/2/3, downloaded as the API produces them and
uploaded again unchanged, create nothing, change nothing and duplicate nothing (hypothesis over
generated registries, kept to a few examples per run). Children registered without an ID number (a
volunteer's push, the number to follow) are among them: the export lists them with an empty 身份证号码,
and the import reports their rows in skipped_rows."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from sqlmodel import Session

from backend.ledgers.sheets import HEADERS, Annex
from backend.registry import idnumber
from backend.registry.models import (
    RISK_PERSON_CATEGORY_ZH,
    ChildCategory,
    Guardianship,
    Person,
    RiskLevel,
    RiskLevelChange,
    RiskPerson,
)
from tests.registry.factories import child_item, household_item, make_world, push, statuses
from tests.xlsx_support import read_workbook, xlsx_bytes

_sequence = itertools.count(1)
HAN = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张孔曹严华金魏陶姜一二三四五六七八九十明华芳丽军伟"
name = st.text(alphabet=HAN, min_size=2, max_size=4)
place = st.one_of(st.none(), st.text(alphabet=HAN + "0123456789组号村镇", min_size=1, max_size=12))
phone = st.one_of(st.none(), st.integers(13000000000, 19999999999).map(str))
level = st.one_of(st.none(), st.sampled_from([lv.value for lv in RiskLevel]))


def _number(birth_year: int, male: bool) -> str:
    n = next(_sequence)
    return idnumber.make("990101", date(birth_year, 1 + n % 12, 1 + n % 28), (2 * n + (1 if male else 0)) % 1000)


@st.composite
def child(draw: Any, annex: Annex) -> list[Any]:
    male = draw(st.booleans())
    number = _number(draw(st.integers(2010, 2020)), male)
    school = draw(st.sampled_from(["", "是", "否"]))
    guardians = draw(st.lists(name, max_size=2, unique=True))
    # One phone per guardian in order, “无” for one without; none at all when no guardian has one.
    phones = [draw(phone) for _ in guardians]
    g_phones = "、".join(p or "无" for p in phones) if any(phones) else ""
    if annex is Annex.key_minors:
        cats = draw(st.lists(st.sampled_from([c.value for c in ChildCategory]), max_size=3, unique=True))
        return ["", draw(name), number, "男" if male else "女", draw(place), draw(place), school, draw(phone),
                "、".join(cats), draw(place), "、".join(guardians), g_phones, draw(place), draw(place),
                draw(level)]
    return ["", draw(name), number, "男" if male else "女", draw(place), draw(place), draw(phone), school,
            "、".join(guardians), g_phones, draw(place), draw(place)]


@st.composite
def risk_person(draw: Any) -> list[Any]:
    male = draw(st.booleans())
    cats = draw(st.lists(st.sampled_from(list(RISK_PERSON_CATEGORY_ZH.values())), min_size=1, max_size=3,
                         unique=True))
    return ["", draw(name), _number(draw(st.integers(1950, 2000)), male), "男" if male else "女", draw(place),
            draw(place), draw(phone), "、".join(cats), draw(level), draw(place)]


def _xlsx(annex: Annex, rows: list[list[Any]]) -> bytes:
    return xlsx_bytes([list(HEADERS[annex]), *([n, *row[1:]] for n, row in enumerate(rows, start=1))])


def _state(session: Session) -> dict[str, Any]:
    session.expire_all()

    def count(model: Any) -> int:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())

    return {
        "persons": count(Person), "guardianships": count(Guardianship), "risk_persons": count(RiskPerson),
        "level_changes": count(RiskLevelChange),
        "versions": session.execute(select(func.sum(Person.version))).scalar_one(),
        "risk_versions": session.execute(select(func.sum(RiskPerson.version))).scalar_one(),
        "revision": session.execute(text("SELECT value FROM sync_counter WHERE id = 1")).scalar_one_or_none(),
    }


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    key_minors=st.lists(child(Annex.key_minors), min_size=1, max_size=4),
    vulnerable=st.lists(child(Annex.vulnerable_minors), min_size=1, max_size=4),
    risk_persons=st.lists(risk_person(), min_size=1, max_size=3),
    without_id=st.lists(st.tuples(name, st.booleans(), st.booleans()), max_size=3),
)
def test_the_towns_own_export_reimported_creates_and_changes_nothing(
    client: TestClient, session: Session, key_minors: list[list[Any]], vulnerable: list[list[Any]],
    risk_persons: list[list[Any]], without_id: list[tuple[str, bool, bool]],
) -> None:
    # Hypothesis runs every example on the same database: one town for all of them.
    if "round_trip_world" not in session.info:
        session.info["round_trip_world"] = make_world(client, session)
    w = session.info["round_trip_world"]
    if without_id:  # pushed through sync by a volunteer, no ID number yet
        h = household_item(0)
        kids = [child_item(h["client_uuid"], name=n, id_number="", key_minor=k, vulnerable=v)
                for n, k, v in without_id]
        assert statuses(push(client, w.volunteer_a, [h, *kids])) == ["created"] * (1 + len(kids))
    registries = ((Annex.key_minors, key_minors, w.coordinator), (Annex.vulnerable_minors, vulnerable, w.coordinator),
                  (Annex.risk_persons, risk_persons, w.police))
    for annex, rows, who in registries:
        resp = client.post(f"/api/v1/ledgers/{annex.value}/import", params={"dry_run": False}, headers=who.headers,
                           files={"file": ("generated.xlsx", _xlsx(annex, rows))})
        assert resp.status_code == 200, resp.text
    for annex, _rows, who in registries:
        exported = client.get(f"/api/v1/ledgers/{annex.value}.xlsx", headers=who.headers)
        assert exported.status_code == 200, exported.text
        before = _state(session)
        sheet = read_workbook(exported.content).worksheets[0]
        header_at = next(n for n, r in enumerate(sheet.iter_rows(values_only=True)) if r[2] == HEADERS[annex][2])
        blank = sum(1 for r in list(sheet.iter_rows(values_only=True))[header_at + 1:] if r[1] and not r[2])
        for dry_run in (True, False):
            resp = client.post(f"/api/v1/ledgers/{annex.value}/import", params={"dry_run": dry_run},
                               headers=who.headers, files={"file": ("export.xlsx", exported.content)})
            assert resp.status_code == 200, resp.text
            body = resp.json()
            assert body["errors"] == [] and body["created"] == 0, body
            assert body["changes"] == [] and body["unchanged"] == body["matched"] > 0, body
            assert {s["kind"] for s in body["skipped_rows"]} <= {"registered_without_id_number"}, body
            assert len(body["skipped_rows"]) == blank and body["rows"] == body["matched"] + blank, body
        assert _state(session) == before
