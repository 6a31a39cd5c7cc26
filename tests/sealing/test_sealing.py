"""犯罪记录封存 (seed 002): records of a person who was a minor at the time are sealed.

A 附件2 risk person whose age at the record's date was under 18 is absent from every list, count,
lookup and export, for every role including the police who entered it; only police open it, one
record at a time, with a stated reason, and each opening is audited. What the walk over every
operation finds is in test_sealed_walk.py.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.permissions import Role
from backend.audit.models import AuditEntry
from backend.core import clock
from backend.registry.models import RiskPerson
from tests.factories import SignedIn, user_client
from tests.notifications.factories import headers_for
from tests.registry.factories import World, born_years_ago, child_id, make_world
from tests.xlsx_support import sheet_rows, xlsx_bytes

API = "/api/v1"
ANNEX2 = ["序号", "姓名", "身份证号码", "性别", "户籍地", "常住地", "联系方式", "分类", "综合研判风险等级", "管控措施"]
REASON = "刑事案件办理需要，核查其未成年时的记录"


def _add(client: TestClient, who: SignedIn, name: str, **fields: Any) -> dict[str, Any]:
    body = {"name": name, "categories": ["2"], "risk_level": "一般风险", "control_measures": "每月走访", **fields}
    resp = client.post(f"{API}/risk-persons", json=body, headers=who.headers)
    assert resp.status_code == 201, resp.text
    out: dict[str, Any] = resp.json()
    return out


def _export_text(client: TestClient, who: SignedIn) -> tuple[str, int]:
    resp = client.get(f"{API}/ledgers/2.xlsx", headers=who.headers)
    assert resp.status_code == 200, resp.text
    rows = sheet_rows(resp.content)
    header = next(i for i, r in enumerate(rows) if r[0] == "序号")  # below the 附件N row and the title
    return "\n".join(str(v) for row in rows for v in row if v is not None), len(rows) - header - 1


def _listed(client: TestClient, who: SignedIn) -> str:
    bare = client.get(f"{API}/risk-persons", headers=who.headers)
    paged = client.get(f"{API}/risk-persons", params={"paged": True, "limit": 1}, headers=who.headers)
    assert bare.status_code == 200 and paged.status_code == 200, (bare.text, paged.text)
    return bare.text + paged.text


def _problem(resp: Any) -> dict[str, Any]:
    body: dict[str, Any] = resp.json()
    body.pop("instance", None)
    return body


def _later(session: Session, who: SignedIn) -> SignedIn:
    """The same user with a token issued by the moved clock."""
    return SignedIn(who.user, headers_for(session, who.user), "")


def _open(client: TestClient, who: SignedIn, rid: int, reason: Any = REASON) -> Any:
    return client.post(f"{API}/risk-persons/{rid}/open-sealed", json={"reason": reason}, headers=who.headers)


def _absent_for(client: TestClient, w: World, who: SignedIn, record: dict[str, Any], number: str) -> None:
    listed = _listed(client, who)
    text, _rows = _export_text(client, who)
    for marker in (record["name"], number):
        assert marker not in listed
        assert marker not in text
    missing = client.get(f"{API}/risk-persons/999999", headers=who.headers)
    got = client.get(f"{API}/risk-persons/{record['id']}", headers=who.headers)
    assert got.status_code == 404
    assert _problem(got) == _problem(missing)  # exactly as a record that does not exist


def test_police_add_a_16_year_old_who_is_then_absent_from_every_list_lookup_and_export(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    adult_number = child_id(born_years_ago(35))
    minor_number = child_id(born_years_ago(16))
    adult = _add(client, w.police, "成年风险甲", id_number=adult_number)
    minor = _add(client, w.police, "封存少年乙", id_number=minor_number)
    assert (adult["sealed"], minor["sealed"]) == (False, True)

    for who in (w.coordinator, w.police):  # the police who entered it see it no more than anyone else
        _absent_for(client, w, who, minor, minor_number)
        assert "成年风险甲" in _listed(client, who)
        text, rows = _export_text(client, who)
        assert rows == 1 and "成年风险甲" in text  # counted: one row, no "1 sealed" anywhere
    exports = session.execute(select(AuditEntry).where(col(AuditEntry.action) == "ledger.export")).scalars().all()
    assert exports and all(e.details["rows"] == 1 for e in exports)
    stored = session.get(RiskPerson, minor["id"])
    assert stored is not None and stored.sealed and stored.name == "封存少年乙"  # kept, not deleted


def test_an_adult_is_not_sealed_and_the_18th_birthday_is_the_line(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    eighteen_today = _add(client, w.police, "今天成年", id_number=child_id(born_years_ago(18, days=0)))
    eighteen_tomorrow = _add(client, w.police, "明天成年", id_number=child_id(born_years_ago(18, days=-1)))
    long_adult = _add(client, w.police, "早已成年", id_number=child_id(born_years_ago(60)))
    no_birth = _add(client, w.police, "无证件")
    assert [r["sealed"] for r in (eighteen_today, eighteen_tomorrow, long_adult, no_birth)] == [
        False, True, False, False]
    names = _listed(client, w.coordinator)
    assert "今天成年" in names and "早已成年" in names and "无证件" in names and "明天成年" not in names


def test_the_rule_reads_the_age_on_the_record_day_in_china() -> None:
    from backend.sealing import rules

    leap = date(2008, 2, 29)
    assert rules.minor_at(leap, datetime(2026, 2, 28, 12, tzinfo=clock.SHANGHAI)) is True
    assert rules.minor_at(leap, datetime(2026, 3, 1, 0, tzinfo=clock.SHANGHAI)) is False
    # 2026-02-28 16:30 UTC is already 1 March in China: the record's day is China's.
    assert rules.minor_at(leap, datetime(2026, 2, 28, 16, 30, tzinfo=UTC)) is False
    assert rules.minor_at(None, datetime(2026, 3, 1, tzinfo=UTC)) is None


def test_a_birth_date_without_an_id_number_seals_too_and_must_agree_with_one(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    minor = _add(client, w.police, "无证少年", birth_date=born_years_ago(15).isoformat())
    assert minor["sealed"] is True
    assert "birth_date" not in minor  # it decides the seal; it is not stored beside a masked number
    assert "无证少年" not in _listed(client, w.coordinator)
    clash = client.post(f"{API}/risk-persons", headers=w.police.headers, json={
        "name": "冲突", "categories": ["2"], "id_number": child_id(born_years_ago(40)),
        "birth_date": born_years_ago(15).isoformat()})
    assert clash.status_code == 422, clash.text
    future = client.post(f"{API}/risk-persons", headers=w.police.headers, json={
        "name": "未来", "categories": ["2"], "birth_date": (clock.now().date() + timedelta(days=400)).isoformat()})
    assert future.status_code == 422, future.text


def test_opening_is_for_police_only_with_a_reason_and_every_opening_is_audited(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    number = child_id(born_years_ago(16))
    minor = _add(client, w.police, "封存少年丙", id_number=number)
    rid = minor["id"]
    volunteer = w.volunteer_a
    grid_worker = user_client(client, session, w.town.villages[0], Role.grid_worker)
    for who in (w.coordinator, volunteer, w.helper, w.market, grid_worker):
        refused = _open(client, who, rid)
        assert refused.status_code == 404, refused.text  # hidden: no sign that anything is sealed here
    for bad in ("", "   ", "x" * 501, None):
        assert _open(client, w.police, rid, bad).status_code == 422
    assert client.post(f"{API}/risk-persons/{rid}/open-sealed", json={}, headers=w.police.headers).status_code == 422
    assert not session.execute(select(AuditEntry).where(col(AuditEntry.action) == "sealed.open")).scalars().all()

    opened = _open(client, w.police, rid)
    assert opened.status_code == 200, opened.text
    body = opened.json()
    assert (body["id"], body["name"], body["sealed"]) == (rid, "封存少年丙", True)
    assert body["id_number_masked"] == minor["id_number_masked"]
    assert datetime.fromisoformat(body["opened_until"]) > clock.now()
    entries = session.execute(select(AuditEntry).where(col(AuditEntry.action) == "sealed.open")).scalars().all()
    assert len(entries) == 1
    entry = entries[0]
    assert (entry.object_type, entry.object_id, entry.actor_user_id) == ("risk_person", str(rid), w.police.user.id)
    assert entry.details["reason"] == REASON

    # Police outside the record's unit open nothing of it; an adult's record is not "sealed".
    village_police = user_client(client, session, w.town.villages[1], Role.police)
    assert _open(client, village_police, rid).status_code == 404
    adult = _add(client, w.police, "成年丁", id_number=child_id(born_years_ago(30)))
    assert _open(client, w.police, adult["id"]).status_code == 404


def test_an_opening_lasts_a_while_for_its_officer_only_and_never_puts_the_record_back_in_lists(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    minor = _add(client, w.police, "封存少年戊", id_number=child_id(born_years_ago(17)))
    rid = minor["id"]
    assert client.get(f"{API}/risk-persons/{rid}", headers=w.police.headers).status_code == 404
    assert _open(client, w.police, rid).status_code == 200
    seen = client.get(f"{API}/risk-persons/{rid}", headers=w.police.headers)
    assert seen.status_code == 200 and seen.json()["sealed"] is True
    reads = session.execute(select(AuditEntry).where(col(AuditEntry.action) == "risk_person.read")).scalars().all()
    assert [e.object_id for e in reads] == [str(rid)]
    other_police = user_client(client, session, w.town.town, Role.police)
    assert client.get(f"{API}/risk-persons/{rid}", headers=other_police.headers).status_code == 404
    assert client.get(f"{API}/risk-persons/{rid}", headers=w.coordinator.headers).status_code == 404
    assert "封存少年戊" not in _listed(client, w.police)
    assert "封存少年戊" not in _export_text(client, w.police)[0]
    clock.advance(timedelta(hours=2))
    assert client.get(f"{API}/risk-persons/{rid}", headers=_later(session, w.police).headers).status_code == 404


def test_a_corrected_birth_date_is_judged_again_both_ways(client: TestClient, session: Session) -> None:
    w = make_world(client, session)
    wrong_adult = _add(client, w.police, "改正庚", id_number=child_id(born_years_ago(26)))
    rid = wrong_adult["id"]
    # The ID number was mistyped: the holder is 16. Corrected, the record is sealed.
    minor_number = child_id(born_years_ago(16))
    fixed = client.put(f"{API}/risk-persons/{rid}", headers=w.coordinator.headers,
                       json={"version": wrong_adult["version"], "id_number": minor_number})
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["sealed"] is True
    assert client.get(f"{API}/risk-persons/{rid}", headers=w.coordinator.headers).status_code == 404
    assert "改正庚" not in _listed(client, w.coordinator)
    # Nobody edits a sealed record without opening it; police open it and correct it back.
    stale = {"version": fixed.json()["version"], "control_measures": "改"}
    assert client.put(f"{API}/risk-persons/{rid}", headers=w.coordinator.headers, json=stale).status_code == 404
    assert client.put(f"{API}/risk-persons/{rid}", headers=w.police.headers, json=stale).status_code == 404
    assert _open(client, w.police, rid).status_code == 200
    back = client.put(f"{API}/risk-persons/{rid}", headers=w.police.headers,
                      json={"version": fixed.json()["version"], "id_number": child_id(born_years_ago(26))})
    assert back.status_code == 200, back.text
    assert back.json()["sealed"] is False
    assert "改正庚" in _listed(client, w.coordinator)
    # An edit that leaves the birth date alone keeps the judgement; the masked number sent back keeps the number.
    kept = client.put(f"{API}/risk-persons/{rid}", headers=w.coordinator.headers, json={
        "version": back.json()["version"], "id_number": back.json()["id_number_masked"], "control_measures": "每周"})
    assert kept.status_code == 200, kept.text
    assert (kept.json()["sealed"], kept.json()["id_number_masked"]) == (False, back.json()["id_number_masked"])
    # A birth date given without an ID number is judged the same way.
    no_id = _add(client, w.police, "无证辛", birth_date=born_years_ago(30).isoformat())
    sealed = client.put(f"{API}/risk-persons/{no_id['id']}", headers=w.police.headers,
                        json={"version": no_id["version"], "birth_date": born_years_ago(14).isoformat()})
    assert sealed.status_code == 200 and sealed.json()["sealed"] is True, sealed.text
    actions = [e.action for e in session.execute(select(AuditEntry).order_by(col(AuditEntry.id))).scalars()]
    assert actions.count("risk_person.update") == 4


def test_the_record_day_stays_the_day_it_was_entered(client: TestClient, session: Session) -> None:
    """A person on the ledger at 17 stays sealed after turning 18: the record is of a minor."""
    w = make_world(client, session)
    minor = _add(client, w.police, "封存壬", id_number=child_id(born_years_ago(17, days=300)))
    clock.advance(timedelta(days=400))
    police, coordinator = _later(session, w.police), _later(session, w.coordinator)
    assert _open(client, police, minor["id"]).status_code == 200
    edited = client.put(f"{API}/risk-persons/{minor['id']}", headers=police.headers,
                        json={"version": minor["version"], "control_measures": "成年后复核"})
    assert edited.status_code == 200 and edited.json()["sealed"] is True, edited.text
    assert "封存壬" not in _listed(client, coordinator)


def test_an_imported_minor_is_sealed_and_duplicate_checks_do_not_give_a_sealed_record_away(
    client: TestClient, session: Session
) -> None:
    w = make_world(client, session)
    minor_number = child_id(born_years_ago(16))
    adult_number = child_id(born_years_ago(40))
    rest = ["男", "示范县", "示范镇", None, "社区矫正对象", "一般风险", "每周报到"]
    sheet = xlsx_bytes([ANNEX2, [1, "导入少年", minor_number, *rest], [2, "导入成年", adult_number, *rest]])
    done = client.post(f"{API}/ledgers/2/import", params={"dry_run": False}, headers=w.police.headers,
                       files={"file": ("a2.xlsx", sheet)})
    # The minor's row is answered as sealed, not as created (the same answer as when a sealed entry of
    # the number exists already: backend/ledgers/importing.py).
    assert done.status_code == 200 and done.json()["created"] == 1, done.text
    assert done.json()["sealed_rows"] == [{"row": 2, "sheet": "Sheet"}], done.text
    text, rows = _export_text(client, w.coordinator)
    assert rows == 1 and "导入成年" in text and "导入少年" not in text and minor_number not in text
    # The coordinator's dry run of the same sheet matches the adult only: the minor's row is answered as
    # sealed, as it was when the entry did not exist yet.
    again = client.post(f"{API}/ledgers/2/import", params={"dry_run": True}, headers=w.coordinator.headers,
                        files={"file": ("a2.xlsx", sheet)})
    assert (again.json()["matched"], again.json()["created"], again.json()["matched_rows"]) == (1, 0, [3]), again.text
    assert again.json()["sealed_rows"] == done.json()["sealed_rows"], again.text
    # Registering the minor again by hand is not refused as "already on the ledger".
    twice = client.post(f"{API}/risk-persons", headers=w.coordinator.headers,
                        json={"name": "导入少年", "categories": ["2"], "id_number": minor_number})
    assert twice.status_code == 201, twice.text
    # Years later the same person, now an adult, goes on the ledger as a record of its own.
    clock.advance(timedelta(days=3 * 366))
    coordinator = _later(session, w.coordinator)
    later = _add(client, coordinator, "导入少年", id_number=minor_number)
    assert later["sealed"] is False
    assert client.post(f"{API}/risk-persons", headers=coordinator.headers, json={
        "name": "重复", "categories": ["2"], "id_number": minor_number}).status_code == 409
    text, rows = _export_text(client, coordinator)
    assert rows == 2 and text.count("导入少年") == 1
