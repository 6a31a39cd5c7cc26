"""Migration 0013 seals the 附件2 entries stored before it by the rule new entries follow, on both backends."""

from __future__ import annotations

from datetime import UTC, date, datetime

import sqlalchemy as sa

from backend.core import crypto
from backend.core.db import create_db_engine
from backend.core.migrate import upgrade
from backend.registry import idnumber
from tests.test_migration_record_clock import fresh_url  # noqa: F401 (a fixture)

TS = sa.DateTime(timezone=True)
RISK_PERSON = sa.table(
    "risk_person", sa.column("id", sa.Integer()), sa.column("org_unit_id"), sa.column("name"),
    sa.column("id_cipher"), sa.column("id_key_id"), sa.column("id_index"), sa.column("id_masked"),
    sa.column("categories", sa.JSON()), sa.column("version"), sa.column("created_at", TS),
    sa.column("updated_at", TS))


def _entry(n: int, name: str, created: datetime, birth: date | None) -> dict[str, object]:
    row: dict[str, object] = {"id": n, "org_unit_id": 1, "name": name, "categories": ["2"], "version": 1,
                              "created_at": created, "updated_at": created}
    if birth is not None:
        number = idnumber.make("990101", birth, n)
        sealed = crypto.encrypt(number)
        row.update(id_cipher=sealed.token, id_key_id=sealed.key_id, id_index=crypto.blind_index(number),
                   id_masked=idnumber.mask(number))
    else:
        row.update(id_cipher=None, id_key_id=None, id_index=None, id_masked=None)
    return row


def test_entries_stored_before_sealing_are_judged_on_their_own_day(fresh_url: str) -> None:  # noqa: F811
    upgrade(fresh_url, "0012")
    engine = create_db_engine(fresh_url)
    made = datetime(2026, 10, 1, 2, 0, tzinfo=UTC)  # 1 October in China
    late = datetime(2026, 10, 14, 17, 0, tzinfo=UTC)  # already 15 October in China
    entries = [
        _entry(1, "十六岁", made, date(2010, 5, 1)),
        _entry(2, "前一天满十八", made, date(2008, 9, 30)),
        _entry(3, "当时十七如今成年", made, date(2008, 10, 15)),
        _entry(4, "无证件", made, None),
        _entry(5, "中国时间当天满十八", late, date(2008, 10, 15)),
    ]
    unit = sa.table("org_unit", sa.column("id"), sa.column("code"), sa.column("name"), sa.column("level"),
                    sa.column("path"), sa.column("created_at", TS), sa.column("updated_at", TS))
    with engine.begin() as conn:
        conn.execute(unit.insert().values(id=1, code="990101", name="测试镇", level="town", path="/1/",
                                          created_at=made, updated_at=made))
        conn.execute(RISK_PERSON.insert(), entries)
    engine.dispose()

    upgrade(fresh_url, "0013")
    engine = create_db_engine(fresh_url)
    with engine.begin() as conn:
        flags = conn.execute(sa.text("SELECT name, sealed FROM risk_person ORDER BY id")).all()
        # The unique index now holds visible entries only: the adult a sealed minor grows into has an
        # entry of its own with the same number.
        grown = _entry(6, "十六岁", datetime(2029, 1, 1, tzinfo=UTC), None)
        grown.update({k: entries[0][k] for k in ("id_cipher", "id_key_id", "id_index", "id_masked")})
        conn.execute(RISK_PERSON.insert(), [grown])
    engine.dispose()
    assert [(name, bool(sealed)) for name, sealed in flags] == [
        ("十六岁", True), ("前一天满十八", False), ("当时十七如今成年", True), ("无证件", False),
        ("中国时间当天满十八", False)]
