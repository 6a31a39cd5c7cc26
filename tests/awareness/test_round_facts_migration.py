"""Migration 0038 gives the rounds stored before it the enrolment and the opener's unit, both ways, on
both backends: their participation is read from then on against the enrolment of migration time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import command

from backend.core.db import create_db_engine
from backend.core.migrate import alembic_config, upgrade
from tests.test_migration_record_clock import fresh_url  # noqa: F401 (the fixture)

TS = sa.DateTime(timezone=True)
AT = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def _table(name: str, *columns: str) -> sa.TableClause:
    return sa.table(name, sa.column("id", sa.Integer()), *(sa.column(c) for c in columns))


def test_rounds_stored_before_keep_the_schools_enrolment_and_the_openers_unit(fresh_url: str) -> None:  # noqa: F811
    upgrade(fresh_url, "0037")
    engine = create_db_engine(fresh_url)
    unit = _table("org_unit", "code", "name", "level", "path", "parent_id", "created_at", "updated_at")
    user = _table("app_user", "phone", "display_name", "password_hash", "org_unit_id", "is_active", "created_at",
                  "updated_at")
    school = _table("institution", "name", "kind", "org_unit_id", "supervising_agency", "address", "student_count",
                    "is_active", "created_at", "updated_at")
    questionnaire = sa.table("awareness_questionnaire", sa.column("id"), sa.column("owner"), sa.column("version"),
                             sa.column("title_zh"), sa.column("title_en"), sa.column("pass_mark"),
                             sa.column("questions", sa.JSON()), sa.column("published_at", TS))
    survey = _table("awareness_round", "institution_id", "org_unit_id", "questionnaire_id", "token_digest",
                    "response_cap", "response_count", "opened_by", "opened_at", "closes_at", "closed_at")
    with engine.begin() as conn:
        conn.execute(unit.insert().values(id=1, code="990100", name="测试镇", level="town", path="/1/",
                                          created_at=AT, updated_at=AT))
        conn.execute(unit.insert().values(id=2, code="990101", name="测试村", level="village", path="/1/2/",
                                          parent_id=1, created_at=AT, updated_at=AT))
        conn.execute(user.insert().values(id=1, phone="19800000001", display_name="协调人", password_hash="x",
                                          org_unit_id=1, is_active=True, created_at=AT, updated_at=AT))
        for n, students in ((1, 342), (2, None)):
            conn.execute(school.insert().values(id=n, name=f"测试小学{n}", kind="primary_school", org_unit_id=2,
                                                supervising_agency="education", address="", student_count=students,
                                                is_active=True, created_at=AT, updated_at=AT))
        conn.execute(questionnaire.insert().values(id=1, owner="national", version=1, title_zh="问卷", title_en="Q",
                                                   pass_mark=1, questions=[], published_at=AT))
        for n in (1, 2):
            conn.execute(survey.insert().values(
                id=n, institution_id=n, org_unit_id=2, questionnaire_id=1, token_digest=f"{n}" * 64,
                response_cap=376, response_count=307, opened_by=1, opened_at=AT, closes_at=AT + timedelta(days=14),
                closed_at=AT + timedelta(days=14)))
    engine.dispose()

    upgrade(fresh_url, "0038")

    engine = create_db_engine(fresh_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT id, students, opened_by_unit_id, response_cap FROM awareness_round ORDER BY id")).all()
        open_index = [i for i in sa.inspect(conn).get_indexes("awareness_round")
                      if i["name"] == "uq_awareness_round_school_open"]
    engine.dispose()
    assert [tuple(r) for r in rows] == [(1, 342, 1, 376), (2, 0, 1, 376)]  # the cap stored stays
    assert open_index and open_index[0]["unique"]  # one open round per school, still

    command.downgrade(alembic_config(fresh_url), "0037")

    engine = create_db_engine(fresh_url)
    with engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("awareness_round")}
        kept = conn.execute(sa.text("SELECT count(*) FROM awareness_round")).scalar_one()
    engine.dispose()
    assert "students" not in columns and "opened_by_unit_id" not in columns and kept == 2
