"""Nobody who may not reveal an ID number can rebuild one from what they are given, and nobody can
rebuild one from what is stored in plaintext.

An ID number (GB 11643) is region (6) + birth date (8) + sequence (3, its parity the sex) + a check
character that follows from the rest. The disclosure design (README, "What each role sees"):

- the masked form everyone receives keeps the region only (`990101************`): no digit of the
  birth date or the sequence;
- roles that may not reveal receive the birth month (`birth_month`, "2012-05"), never the date;
- in plaintext at rest: the masked form and the birth date; the sequence lives only in the cipher.

So a caller who knows everything a volunteer can receive still faces about 28 x 500 candidates per
child, and a copy of the database without the key about 500 (and no way to test them: the blind
index is keyed). The test walks every operation of the endpoint matrix as every role that may not
reveal, drains the sync pull, reads the notifications, and reads every plaintext column of every
table; it fails if any of it holds a child's exact birth date (non-revealers), its sequence digits
next to the check character, or the digits that follow the region."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import replace
from datetime import date
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import String, Text, inspect, select, text
from sqlmodel import Session, col

from backend.accounts.models import User
from backend.accounts.permissions import PERMISSIONS, Action, Role
from backend.core import crypto
from backend.main import create_app
from backend.registry import idnumber
from backend.registry.models import Person
from backend.staff_checks.models import StaffMember
from tests.factories import make_user
from tests.institutions.factories import make_institution
from tests.media.conftest import media_root  # noqa: F401 (a fixture)
from tests.notifications.factories import headers_for
from tests.registry.factories import child_item, household_item
from tests.test_endpoint_matrix import ROWS, _world

API = "/api/v1"
NON_REVEALING = [r for r in Role if Action.child_reveal_id not in PERMISSIONS[r]]
# Columns that hold a number only as ciphertext or a keyed digest (useless without the key).
# The seeded children's birth date: a leap day, which no date the system makes can be by chance. The
# 17th of a month was (a monthly report is due on the 17th, and the endpoint matrix names its report
# months by a counter that reached 2012-05 in long runs: its due date read as a leaked birth date).
BORN = date(2012, 2, 29)
SEALED_COLUMNS = {"id_cipher", "id_index", "id_key_id", "password_hash", "token_hash", "secret_hash"}


def ids_ending_in_x(count: int, birth: date) -> list[str]:
    """Valid ID numbers whose check character is X: "dddX" appears nowhere else by chance (uuids are
    hex, counters and phone numbers are digits), so finding it anywhere means the number leaked."""
    out = []
    sequence = 100
    while len(out) < count:
        sequence += 1
        value = idnumber.make("990101", birth, sequence)
        if value.endswith("X"):
            out.append(value)
    return out


def _seed(client: TestClient, headers: dict[str, str]) -> None:
    """Children and a guardian with ID numbers, registered the way a coordinator's phone does."""
    home = household_item(0, 2)
    children = ids_ending_in_x(3, BORN)
    items = [home] + [child_item(home["client_uuid"], name=f"重建测试{i}", id_number=n)
                      for i, n in enumerate(children)]
    resp = client.post(f"{API}/sync/push", json={"items": items}, headers=headers)
    assert resp.status_code == 200 and {r["status"] for r in resp.json()["results"]} == {"created"}, resp.text


def _texts(resp: Any) -> list[str]:
    """What a response says, as text: JSON and text bodies as they are, a workbook cell by cell."""
    body: bytes = resp.content
    if body[:2] == b"PK":  # xlsx (and other zip containers): the XML parts hold the cells
        try:
            with zipfile.ZipFile(io.BytesIO(body)) as z:
                return [z.read(name).decode("utf-8", "replace") for name in z.namelist() if name.endswith(".xml")]
        except zipfile.BadZipFile:
            return []
    if body[:8] == b"\x89PNG\r\n\x1a\n" or body[:3] == b"\xff\xd8\xff":
        # An image says only what its metadata says: its compressed pixels matched a number's last
        # four characters by chance (a map PNG held "111X").
        from PIL import Image

        with Image.open(io.BytesIO(body)) as image:
            return [str(value) for value in image.info.values()]
    return [body.decode("utf-8", "replace")]


def _known_numbers(session: Session) -> list[tuple[str, date]]:
    numbers = []
    for cipher, born in session.execute(select(col(Person.id_cipher), col(Person.birth_date))).all():
        if cipher is not None:
            numbers.append((crypto.decrypt(cipher), born))
    # Staff of institutions (从业查询, issue 18): their numbers are sealed the same way.
    for cipher in session.execute(select(col(StaffMember.id_cipher))).scalars():
        number = crypto.decrypt(cipher)
        numbers.append((number, idnumber.parse(number).birth_date))
    return numbers


def _seed_staff(client: TestClient, headers: dict[str, str], session: Session, unit_id: int) -> None:
    """Staff members with numbers ending in X, added as a supervising agency's clerk adds them."""
    school = make_institution(session, unit_id)
    for i, number in enumerate(ids_ending_in_x(2, date(1984, 7, 9))):
        resp = client.post(f"{API}/institutions/{school.id}/staff", headers=headers,
                           json={"name": f"教职工{i}", "id_number": number, "status": "employed",
                                 "hire_date": "2020-09-01"})
        assert resp.status_code == 201, resp.text


def _date_spellings(born: date) -> list[str]:
    return [born.isoformat(), f"{born:%Y%m%d}", f"{born:%Y/%m/%d}", f"{born.year}年{born.month}月{born.day}日"]


def _leaks(texts: list[str], numbers: list[tuple[str, date]], *, dates: bool) -> list[str]:
    found = []
    for number, born in numbers:
        needles = [number[6:17], number[14:]] if number.endswith("X") else [number[6:17]]
        if dates and born is not None:
            needles += _date_spellings(born)
        for needle in needles:
            pattern = re.compile(re.escape(needle) + (r"(?![0-9])" if needle[-1].isdigit() else ""), re.IGNORECASE)
            if any(pattern.search(t) for t in texts):
                found.append(f"{needle} (of {number[:6]}…)")
    return found


@pytest.fixture(scope="module")
def walk_app() -> FastAPI:
    return create_app()


@pytest.mark.usefixtures("media_root")
def test_no_non_revealing_role_receives_what_rebuilds_an_id_number(walk_app: FastAPI, session: Session) -> None:
    with TestClient(walk_app) as client:
        world = _world(session)
        coordinator = make_user(session, world.town.town, Role.coordinator)
        _seed(client, headers_for(session, coordinator))
        received: dict[str, dict[str, list[str]]] = {}
        for role in NON_REVEALING:
            caller: User = make_user(session, ROWS["GET /api/v1/sync/pull"].caller(world.town), role)
            headers = headers_for(session, caller)
            w = replace(world, caller_id=caller.id or 0)
            texts: dict[str, list[str]] = {op: _texts(ROWS[op].call(client, headers, w, True)) for op in sorted(ROWS)}
            cursor = None
            pages: list[str] = []
            while True:  # the whole pull, not the matrix's one page
                page = client.get(f"{API}/sync/pull", params={"cursor": cursor} if cursor else {}, headers=headers)
                pages += _texts(page)
                if page.status_code != 200 or not page.json()["has_more"]:
                    break
                cursor = page.json()["next_cursor"]
            texts["the whole sync pull"] = pages
            received[role.value] = texts

    numbers = _known_numbers(session)
    assert len([n for n, _ in numbers if n.endswith("X")]) >= 3  # the seeded children are there
    # Named by operation, so a failure says which response carried it (and what else it said).
    leaks = {f"{role} {op}": (found, [t[:2000] for t in texts])
             for role, by_op in received.items() for op, texts in by_op.items()
             if (found := _leaks(texts, numbers, dates=True))}
    assert not leaks, f"non-revealing roles received what rebuilds ID numbers: {leaks}"


def test_nothing_stored_in_plaintext_rebuilds_an_id_number(client: TestClient, session: Session) -> None:
    world = _world(session)
    coordinator = make_user(session, world.town.town, Role.coordinator)
    _seed(client, headers_for(session, coordinator))
    police = make_user(session, world.town.town, Role.police)
    _seed_staff(client, headers_for(session, police), session, world.town.villages[0].id or 0)
    # Every row's plaintext: each text-like column of each table, whatever the table is.
    texts: list[str] = []
    connection = session.connection()
    for table in inspect(connection).get_table_names():
        columns = [c["name"] for c in inspect(connection).get_columns(table)
                   if isinstance(c["type"], String | Text) or "JSON" in str(c["type"]).upper()]
        columns = [c for c in columns if c not in SEALED_COLUMNS]
        if not columns:
            continue
        listed = ", ".join(f'"{c}"' for c in columns)
        for row in connection.execute(text(f'SELECT {listed} FROM "{table}"')):
            texts += [v if isinstance(v, str) else orjson.dumps(v).decode() for v in row if v is not None]
    numbers = _known_numbers(session)
    assert len([n for n, _ in numbers if n.endswith("X")]) >= 5  # the children and the staff
    leaks = _leaks(texts, numbers, dates=False)
    assert not leaks, f"plaintext columns rebuild ID numbers: {leaks}"
