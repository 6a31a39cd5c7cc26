"""Identifiers typed by people reach one canonical ASCII form at every boundary.

The same resident ID number, phone number or credit code can be typed in many ways that Unicode
says are the same (full-width digits from a Chinese keyboard, mathematical digits, a lower-case
x, ideographic spaces, a +86 prefix): each must be stored once, in one spelling, whichever way in
it came (REST, sync push, the .xlsx imports, sign-in), and a second spelling of a stored one must
be caught as the same. Digits of other scripts, which NFKC leaves as they are (Arabic-Indic,
Devanagari ...), are not ASCII digits and are refused, although `\\d` and `int()` accept them.
"""

from __future__ import annotations

import unicodedata
import uuid
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlmodel import Session

from backend.accounts.models import User
from backend.accounts.permissions import Role
from backend.core import crypto, identifiers
from backend.registry import idnumber
from backend.registry.models import Household, Person, RiskPerson
from backend.venues.credit_code import complete
from backend.venues.models import Venue
from tests.factories import TEST_PASSWORD, make_user, sign_in
from tests.registry.factories import World, child_item, household_item, make_world, push, statuses
from tests.venues.factories import grid_point
from tests.xlsx_support import sheet_rows, xlsx_bytes

SETTINGS = settings(max_examples=12, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# Digit families NFKC maps to ASCII digits (full-width, mathematical bold, double-struck, sans-serif,
# monospace) and families it leaves alone (Arabic-Indic, Extended Arabic-Indic, Devanagari, Bengali,
# Thai): `\d` and int() accept both kinds.
NFKC_DIGIT_BASES = (0xFF10, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7F6)
FOREIGN_DIGIT_BASES = (0x0660, 0x06F0, 0x0966, 0x09E6, 0x0E50)
SPACES = (" ", "\u3000", "\u00a0", "\t", "\u2002")

_serial = iter(range(100, 10**6))


def _variant_char(draw: st.DrawFn, ch: str) -> str:
    # One draw of the same shape whatever `ch` is: the canonical values come from counters, and
    # hypothesis replays an example only if its draws keep their shape.
    k = draw(st.integers(0, len(NFKC_DIGIT_BASES)))
    if ch.isdigit():
        return chr((0x30, *NFKC_DIGIT_BASES)[k] + int(ch))
    if ch.isalpha():
        return (ch, ch.lower(), chr(ord(ch) + 0xFEE0), chr(ord(ch.lower()) + 0xFEE0))[k % 4]
    return ch


@st.composite
def spelled(draw: st.DrawFn, canonical: str, *, separators: tuple[str, ...] = SPACES) -> str:
    """`canonical` spelled another way NFKC folds back: per character ASCII, full-width or another
    compatibility digit, letters in either case, separators anywhere."""
    between = ("", "", "", *separators)
    out = [draw(st.sampled_from(("", *separators)))]
    for ch in canonical:
        out.append(_variant_char(draw, ch))
        out.append(between[draw(st.integers(0, len(between) - 1))])
    return "".join(out)


@st.composite
def foreign_digits(draw: st.DrawFn, canonical: str) -> str:
    """`canonical` with at least one digit written in a script NFKC does not fold."""
    positions = [i for i, ch in enumerate(canonical) if ch.isdigit()]
    picked = draw(st.sets(st.integers(0, len(canonical) - 1), min_size=1, max_size=4))
    chosen = {positions[i % len(positions)] for i in picked}
    base = draw(st.sampled_from(FOREIGN_DIGIT_BASES))
    return "".join(chr(base + int(ch)) if i in chosen else ch for i, ch in enumerate(canonical))


def _id_number(*, minor: bool, x: bool) -> str:
    """A fresh checksum-valid ID number; ending in X when `x` (the case the fault was seen with)."""
    while True:
        serial = next(_serial)
        birth = (date(2013, 3, 4) if minor else date(1979, 8, 9)) + timedelta(days=serial // 1000)
        number = idnumber.make("990101", birth, serial % 1000)
        if (number[-1] == "X") == x:
            return number


def _reveal(client: TestClient, w: World, person_id: int) -> str:
    resp = client.post(f"/api/v1/persons/{person_id}/reveal-id", json={"reason": "核对"}, headers=w.police.headers)
    assert resp.status_code == 200, resp.text
    value: str = resp.json()["id_number"]
    return value


ANNEX3 = ["序号", "姓名", "身份证号码", "性别", "户籍地", "常住地", "联系电话", "是否在读", "监护人姓名", "联系电话",
          "专班人员及联系方式", "帮扶措施"]
ANNEX2 = ["序号", "姓名", "身份证号码", "性别", "户籍地", "常住地", "联系方式", "分类", "综合研判风险等级", "管控措施"]


class ChildBoundaries:
    """Each way a child's ID number enters, answering (accepted?, the stored person's id or None)."""

    def __init__(self, client: TestClient, session: Session, w: World) -> None:
        self.client, self.session, self.w = client, session, w
        self.home = push(client, w.volunteer_a, [household_item(0)])["results"][0]["record"]

    def rest(self, spelling: str, name: str) -> tuple[bool, int | None]:
        resp = self.client.post("/api/v1/persons", json={"household_uuid": self.home["uuid"], "name": name,
                                                         "id_number": spelling}, headers=self.w.volunteer_a.headers)
        assert resp.status_code in (201, 409, 422), resp.text
        return resp.status_code == 201, resp.json().get("id")

    def rest_edit(self, spelling: str, name: str) -> tuple[bool, int | None]:
        bare = self.client.post("/api/v1/persons", json={"household_uuid": self.home["uuid"], "name": name},
                                headers=self.w.volunteer_a.headers).json()
        resp = self.client.put(f"/api/v1/persons/{bare['id']}", json={"version": 1, "id_number": spelling},
                               headers=self.w.volunteer_a.headers)
        assert resp.status_code in (200, 409, 422), resp.text
        return resp.status_code == 200, bare["id"] if resp.status_code == 200 else None

    def sync(self, spelling: str, name: str) -> tuple[bool, int | None]:
        body = push(self.client, self.w.volunteer_a, [child_item(self.home["uuid"], name=name, id_number=spelling)])
        record = body["results"][0]["record"]
        return statuses(body) == ["created"], record["id"] if record else None

    def sync_edit(self, spelling: str, name: str) -> tuple[bool, int | None]:
        item = child_item(self.home["uuid"], name=name)
        del item["data"]["id_number"]
        bare = push(self.client, self.w.volunteer_a, [item])["results"][0]["record"]
        body = push(self.client, self.w.volunteer_a, [{"kind": "person", "client_uuid": bare["uuid"],
                                                       "base_version": 1, "data": {"id_number": spelling}}])
        return statuses(body) == ["updated"], bare["id"] if statuses(body) == ["updated"] else None

    def ledger(self, spelling: str, name: str) -> tuple[bool, int | None]:
        rows = [ANNEX3, [1, name, spelling, "", "", "", "", "是", "", "", "", ""]]
        resp = self.client.post("/api/v1/ledgers/3/import", params={"dry_run": False},
                                headers=self.w.coordinator.headers, files={"file": ("a3.xlsx", xlsx_bytes(rows))})
        assert resp.status_code in (200, 422), resp.text
        if resp.status_code != 200:
            return False, None
        ids = self.session.execute(select(Person.id).where(Person.name == name)).scalars().all()
        return True, ids[0] if ids else None


CHILD_WAYS = ("rest", "rest_edit", "sync", "sync_edit", "ledger")


def _people_holding(session: Session, canonical: str) -> list[Person]:
    """Every stored person whose ID number is `canonical` in any spelling."""
    session.expire_all()
    people = session.execute(select(Person).where(Person.id_cipher.is_not(None))).scalars()  # type: ignore[union-attr]
    return [p for p in people if _folded(crypto.decrypt(p.id_cipher or "")) == canonical]


def _folded(value: str) -> str:
    return "".join(unicodedata.normalize("NFKC", value).split()).upper()


def test_a_childs_id_number_is_stored_once_in_ascii_whichever_way_and_spelling_it_comes(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    ways = ChildBoundaries(client, session, w)

    @SETTINGS
    @given(data=st.data(), first=st.sampled_from(CHILD_WAYS), second=st.sampled_from(CHILD_WAYS),
           x=st.booleans())
    def check(data: st.DataObject, first: str, second: str, x: bool) -> None:
        canonical = _id_number(minor=True, x=x)
        one, two = data.draw(spelled(canonical)), data.draw(spelled(canonical))
        accepted, person_id = getattr(ways, first)(one, f"甲{uuid.uuid4().hex[:6]}")
        assert accepted and person_id is not None, (first, one)
        assert _reveal(client, w, person_id) == canonical
        [stored] = _people_holding(session, canonical)
        assert crypto.decrypt(stored.id_cipher or "") == canonical
        assert stored.id_masked == idnumber.mask(canonical)
        getattr(ways, second)(two, f"乙{uuid.uuid4().hex[:6]}")
        # Caught as the same number: refused, or (a ledger of the same area) matched to the one record.
        holders = _people_holding(session, canonical)
        assert [p.id for p in holders] == [person_id], (second, two)
        assert crypto.decrypt(holders[0].id_cipher or "") == canonical

    check()


def test_a_childs_id_number_in_digits_nfkc_does_not_fold_is_refused_everywhere(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    ways = ChildBoundaries(client, session, w)

    @SETTINGS
    @given(data=st.data(), way=st.sampled_from(CHILD_WAYS))
    def check(data: st.DataObject, way: str) -> None:
        canonical = _id_number(minor=True, x=data.draw(st.booleans()))
        spelling = data.draw(foreign_digits(canonical))
        accepted, _ = getattr(ways, way)(spelling, f"丙{uuid.uuid4().hex[:6]}")
        assert not accepted, (way, spelling)
        assert _people_holding(session, canonical) == []
        assert _people_holding(session, _folded(spelling)) == []

    check()


def _risk_rest(client: TestClient, w: World, spelling: str, name: str) -> bool:
    resp = client.post("/api/v1/risk-persons", json={"name": name, "id_number": spelling, "categories": ["3"]},
                       headers=w.police.headers)
    assert resp.status_code in (201, 409, 422), resp.text
    return resp.status_code == 201


def _risk_ledger(client: TestClient, w: World, spelling: str, name: str) -> bool:
    rows = [ANNEX2, [1, name, spelling, "", "", "", "", "流浪乞讨人员", "", ""]]
    resp = client.post("/api/v1/ledgers/2/import", params={"dry_run": False}, headers=w.police.headers,
                       files={"file": ("a2.xlsx", xlsx_bytes(rows))})
    assert resp.status_code in (200, 422), resp.text
    return resp.status_code == 200


def test_a_risk_persons_id_number_is_stored_once_in_ascii_and_foreign_digits_are_refused(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    ways = {"rest": _risk_rest, "ledger": _risk_ledger}

    @SETTINGS
    @given(data=st.data(), first=st.sampled_from(sorted(ways)), second=st.sampled_from(sorted(ways)))
    def check(data: st.DataObject, first: str, second: str) -> None:
        canonical = _id_number(minor=False, x=data.draw(st.booleans()))
        foreign = data.draw(foreign_digits(canonical))
        assert not ways[first](client, w, foreign, "丁某")
        assert ways[first](client, w, data.draw(spelled(canonical)), "戊某")
        ways[second](client, w, data.draw(spelled(canonical)), "己某")
        session.expire_all()
        stored = [crypto.decrypt(r.id_cipher or "") for r in session.execute(select(RiskPerson)).scalars()]
        assert [v for v in stored if _folded(v) == canonical] == [canonical]
        assert _folded(foreign) not in map(_folded, stored)
        sheet = client.get("/api/v1/ledgers/2.xlsx", headers=w.police.headers)
        assert canonical in _cells(sheet.content)

    check()


def _cells(content: bytes) -> set[str]:
    return {str(c) for row in sheet_rows(content) for c in row if c is not None}


# ---------------------------------------------------------------- phone numbers

PHONE_SEPARATORS = (" ", "-", "\u3000", "\uff0d", "\u2010")


@st.composite
def spelled_mobile(draw: st.DrawFn, canonical: str) -> str:
    prefix = draw(st.sampled_from(("", "+86", "＋８６", "0086", "+86 ")))
    return prefix + draw(spelled(canonical, separators=PHONE_SEPARATORS))


_mobiles = iter(range(1000, 10**4))


def _mobile() -> str:
    return f"1970000{next(_mobiles):04d}"


def test_a_users_phone_number_is_stored_once_and_signs_in_whichever_way_it_is_typed(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    village = w.town.villages[0]

    @SETTINGS
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        canonical = _mobile()
        body = {"display_name": "新志愿者", "password": TEST_PASSWORD, "org_unit_id": village.id,
                "roles": ["volunteer"], "agency": "womens_federation"}
        refused = client.post("/api/v1/users", json={**body, "phone": data.draw(foreign_digits(canonical))},
                              headers=w.coordinator.headers)
        assert refused.status_code == 422, refused.text
        made = client.post("/api/v1/users", json={**body, "phone": data.draw(spelled_mobile(canonical))},
                           headers=w.coordinator.headers)
        assert made.status_code == 201, made.text
        assert made.json()["phone"] == canonical
        again = client.post("/api/v1/users", json={**body, "phone": data.draw(spelled_mobile(canonical))},
                            headers=w.coordinator.headers)
        assert again.status_code == 422, again.text
        assert session.execute(select(func.count()).select_from(User).where(User.phone == canonical)).scalar_one() == 1
        login = client.post("/api/v1/auth/login", json={"phone": data.draw(spelled_mobile(canonical)),
                                                        "password": TEST_PASSWORD})
        assert login.status_code == 200, login.text

    check()


def test_contact_numbers_are_stored_in_ascii_from_rest_sync_and_ledgers(client: TestClient, session: Session) -> None:
    w = make_world(client, session)

    @SETTINGS
    @given(data=st.data(), way=st.sampled_from(("household_rest", "household_sync", "person_sync", "ledger")))
    def check(data: st.DataObject, way: str) -> None:
        canonical = _mobile()
        spelling = data.draw(spelled_mobile(canonical))
        foreign = data.draw(foreign_digits(canonical))
        lon, lat = grid_point((0, 0))
        if way == "household_rest":
            for value, ok in ((foreign, False), (spelling, True)):
                resp = client.post("/api/v1/households", json={"address": "青山村", "lon": lon, "lat": lat,
                                                               "contact": value}, headers=w.volunteer_a.headers)
                assert (resp.status_code == 201) is ok, (value, resp.text)
            stored = session.execute(select(Household.contact).order_by(Household.id.desc())).scalars().first()
        elif way == "household_sync":
            body = push(client, w.volunteer_a,
                        [household_item(0, contact=foreign), household_item(0, contact=spelling)])
            assert statuses(body) == ["rejected", "created"], body
            stored = body["results"][1]["record"]["contact"]
        elif way == "person_sync":
            home = household_item(0)
            items = [home, {"kind": "person", "client_uuid": str(uuid.uuid4()), "base_version": None,
                            "data": {"role": "guardian", "household_uuid": home["client_uuid"], "name": "监护人",
                                     "contact": foreign}},
                     {"kind": "person", "client_uuid": str(uuid.uuid4()), "base_version": None,
                      "data": {"role": "guardian", "household_uuid": home["client_uuid"], "name": "监护人",
                               "contact": spelling}}]
            body = push(client, w.volunteer_a, items)
            assert statuses(body) == ["created", "rejected", "created"], body
            stored = body["results"][2]["record"]["contact"]
        else:
            name = f"庚{uuid.uuid4().hex[:6]}"
            rows = [ANNEX3, [1, name, _id_number(minor=True, x=False), "", "", "", spelling, "是", "", "", "", ""]]
            resp = client.post("/api/v1/ledgers/3/import", params={"dry_run": False},
                               headers=w.coordinator.headers, files={"file": ("a3.xlsx", xlsx_bytes(rows))})
            assert resp.status_code == 200, resp.text
            stored = session.execute(select(Person.contact).where(Person.name == name)).scalar_one()
        assert stored == canonical, (way, spelling)

    check()


# ---------------------------------------------------------------- credit codes

_codes = iter(range(500, 10**6))


def _credit_code() -> str:
    return complete(f"91990101MA{next(_codes):06d}X")


def test_a_credit_code_is_stored_once_in_ascii_from_rest_and_import(client: TestClient, session: Session) -> None:
    make_world(client, session)
    world = _venue_world(client, session)

    @SETTINGS
    @given(data=st.data(), second=st.sampled_from(("rest", "import")))
    def check(data: st.DataObject, second: str) -> None:
        canonical = _credit_code()
        lon, lat = grid_point((0, 1))
        body = {"venue_type": "hotel", "name": "青山旅馆", "address": "青山村", "lon": lon, "lat": lat}
        refused = client.post("/api/v1/venues", json={**body, "credit_code": data.draw(foreign_digits(canonical))},
                              headers=world.headers)
        assert refused.status_code == 422, refused.text
        made = client.post("/api/v1/venues", json={**body, "credit_code": data.draw(spelled(canonical))},
                           headers=world.headers)
        assert made.status_code == 201, made.text
        assert made.json()["credit_code"] == canonical
        again = data.draw(spelled(canonical))
        if second == "rest":
            resp = client.post("/api/v1/venues", json={**body, "credit_code": again}, headers=world.headers)
            assert resp.status_code == 409, resp.text
        else:
            sheet = xlsx_bytes([["场所类型", "场所名称", "统一社会信用代码"], ["酒店", "青山旅馆", again]])
            resp = client.post("/api/v1/venues/import", headers=world.headers,
                               files={"file": ("v.xlsx", sheet, "application/octet-stream")})
            assert resp.status_code == 200 and resp.json()["created"] == 0, resp.text
        found = client.get("/api/v1/venues", params={"q": data.draw(spelled(canonical))}, headers=world.headers)
        assert [v["credit_code"] for v in found.json()["items"]] == [canonical]
        assert session.execute(
            select(func.count()).select_from(Venue).where(Venue.credit_code == canonical)).scalar_one() == 1

    check()


class _VenueCaller:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


def _venue_world(client: TestClient, session: Session) -> _VenueCaller:
    from backend.orgunits.models import OrgUnit

    town = session.execute(select(OrgUnit).where(OrgUnit.code == "990101100000")).scalar_one()
    return _VenueCaller(sign_in(client, make_user(session, town, Role.market_officer)).headers)


def test_a_phone_written_as_a_spreadsheet_number_or_with_an_extension_is_never_made_another_number() -> None:
    """13800138000.0 (a spreadsheet's number) once became 138001380000, and 13800138000-8001 the
    15 digits 138001380008001: numbers nobody has. The first is refused everywhere, the second kept
    as the text it is."""
    for typed in ("13800138000.0", "5.71889E+09", "1.38001e+10", "１３８００１３８０００.０"):
        with pytest.raises(identifiers.SpreadsheetNumber):
            identifiers.contact(typed)
        with pytest.raises(ValueError):
            identifiers.phone(typed)
    assert identifiers.contact("13800138000-8001") == "13800138000-8001"
    assert identifiers.contact("0571-12345678-8001") == "0571-12345678-8001"
    assert identifiers.contact("138.0013.8000") == identifiers.contact("+86 138 0013 8000") == "13800138000"
    assert identifiers.contact("0571-12345678") == "057112345678"
