"""Every endpoint x every role x own/foreign jurisdiction, through HTTP.

ROWS holds one row per operation (METHOD path) the app serves with a token: the actions that
guard it, in the order it checks them, and how to call it against a record or unit inside the
caller's jurisdiction and outside it. For each row and each role: a role lacking an action is
refused (403, or 404 for a hidden action: the record's existence is not confirmed); an allowed
role succeeds on its own record and gets 404 for a foreign one (a foreign record is as good as
absent: lists must not carry it); no token at all is 401. Helpers are tried twice (issue 13): with
every child the row makes taken on by them (an accepted assignment) and without; on a row that
carries children's records (`by_assignment`) a helper's own-side record of a child not assigned to
it is 404 like a foreign one, and no answer a helper without the child receives, on any row, may
carry an identifier or a name of any child, guardian, household or visit of the town. PUBLIC holds the operations served
without a token, each with the authorisation it carries itself (a password, a refresh token, a
signed link, a calendar secret). The first test fails, naming it, when the app has an operation
without a row, so a new endpoint cannot ship without saying who may call it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select
from sqlmodel import Session, col

from backend.accounts import service as accounts
from backend.accounts.models import User
from backend.accounts.permissions import HIDDEN_ACTIONS, PERMISSIONS, Action, Role
from backend.accounts.principal import Principal
from backend.agency_referrals.models import AgencyReferralStatus
from backend.audit import service as audit
from backend.core import clock, workbook
from backend.demo.town import DemoTown
from backend.helpers.models import Assignment, AssignmentStatus
from backend.incidents import service as incidents
from backend.inspections import checklists as inspection_checklists
from backend.inspections.models import InspectionChecklistVersion
from backend.main import create_app
from backend.media import scheduled as media_jobs
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel, OrgUnit
from backend.prevention.models import ActivityType
from backend.referrals.models import Referral, ReferralStatus
from backend.registry.models import Household, Person
from backend.report_submissions import service as report_submissions
from backend.report_submissions.models import ReportSubmission
from backend.reports import service as reports
from backend.reports.models import MonthlyReport, ReportStatus
from backend.staff_checks.models import StaffMember
from backend.sync import revisions
from backend.venues import xlsx as venue_xlsx
from backend.visits.models import Visit
from tests import matrix_support as m
from tests.awareness.factories import SURVEY_VERSION
from tests.factories import TEST_PASSWORD, make_town, make_user, sign_in
from tests.matrix_support import PROBES, Call, Probe, World, county_caller, village_caller
from tests.media.conftest import media_root  # noqa: F401 (a fixture)
from tests.notifications.factories import add_device, headers_for
from tests.registry.factories import child_id
from tests.staff_checks.factories import staff_number
from tests.venues.factories import grid_point

A = Action
API = "/api/v1"


@dataclass(frozen=True)
class Row:
    """One operation: who may call it and how to call it against an own and a foreign record."""

    call: Call
    # The actions the endpoint checks, in that order; () when every signed-in user may call it.
    guard: tuple[Action, ...]
    # False where there is nothing foreign to try (global lists, one's own profile, server-wide actions).
    foreign: bool = True
    caller: Callable[[DemoTown], OrgUnit] = village_caller
    # What an allowed caller gets for a foreign record where it is not 404 (an all-or-nothing import
    # names the foreign rows it refuses).
    foreign_status: int = 404
    # Vector tiles are served on PostGIS only; an allowed caller on SpatiaLite gets 501 (documented).
    postgis_only: bool = False
    # The operation carries children's records (or counts of them): a caller whose access is by
    # assignment only (a helper) gets an own-side record of a child not assigned to it as a foreign one.
    by_assignment: bool = False
    # Roles holding the guard that the operation still refuses (403) on a record they see: a helper sees
    # the referrals of its own children's cases but never answers one (it acts for itself, not a unit).
    refused: frozenset[Role] = frozenset()


HELPER = frozenset({Role.helper})


def probe(action: str, *guard: Action, by_assignment: bool = False) -> Row:
    """The row of an endpoint the action matrix already probes; `guard` defaults to the action."""
    p: Probe = PROBES[action]
    return Row(p.call, guard or (Action(action),), foreign=p.has_jurisdiction, caller=p.caller,
               by_assignment=by_assignment)


def child_row(call: Call, *guard: Action, foreign_status: int = 404) -> Row:
    """A row whose answer carries children's records (or counts of them)."""
    return Row(call, guard, foreign_status=foreign_status, by_assignment=True)


def listed(ident: object, resp: Response, key: str = "id") -> Response:
    """A listing seen as an answer about one record: the listing when it carries the record, 404 when
    it succeeds without it (a foreign record must be as absent from lists as from lookups). The record
    comes first so that it is made before the listing is fetched."""
    if not resp.is_success:
        return resp
    body: Any = resp.json()
    items = body["items"] if isinstance(body, dict) else body
    if any(str(item.get(key)) == str(ident) for item in items):
        return resp
    return Response(404, json={"not_listed": str(ident)}, request=resp.request)


def own_or_foreign_user(w: World, own: bool) -> int:
    return w.own_user_id if own else w.foreign_user_id


def device(w: World, own: bool) -> int:
    """A phone of the caller, or of the foreign volunteer."""
    holder = m.user(w, w.caller_id if own else w.foreign_user_id)
    return add_device(m.s(w), holder, f"tok-matrix-{m.serial()}").id or 0


def ready_photo(c: TestClient, w: World, own: bool) -> str:
    """A photo processed by the worker, so it has derivatives to link to."""
    client_uuid = m.photo(c, w, own)
    media_jobs.process_received(m.s(w))
    return client_uuid


def listed_photo(c: TestClient, h: dict[str, str], w: World, own: bool) -> Response:
    parent = m.photo_parent(c, w, own)
    client_uuid = m.photo(c, w, own, parent)
    resp = c.get(f"{API}/media", params={"parent_kind": "visit", "parent_uuid": parent}, headers=h)
    return listed(client_uuid, resp, key="client_uuid")


def received_referral(c: TestClient, w: World, own: bool) -> int:
    referral_id = m.referral(c, w, own)
    row = m.s(w).get(Referral, referral_id)
    assert row is not None
    row.status, row.received_at = ReferralStatus.received.value, clock.now()
    m.s(w).add(row)
    m.s(w).commit()
    return referral_id


def pull(c: TestClient, h: dict[str, str], w: World, own: bool) -> Response:
    """The pull seen as an answer about one household and its child: it carries the caller's own, never
    a foreign one (nor, to a helper, one whose child it has not taken on)."""
    kid = m.child(w, own)
    revisions.restamp(m.s(w), Household, [kid.household_id or 0])  # new revisions, as a phone's push gives
    revisions.restamp(m.s(w), Person, [kid.id or 0])
    m.s(w).commit()
    resp = c.get(f"{API}/sync/pull", params={"limit": 500}, headers=h)
    if not resp.is_success:
        return resp
    records = [e["record"] for e in resp.json()["items"] if e["kind"] in ("household", "person")]
    home = m.home_of(w, kid)
    if str(kid.uuid) not in {r["uuid"] for r in records}:
        return Response(404, json={"not_listed": "child"}, request=resp.request)
    return listed(str(home.uuid), Response(resp.status_code, json=records, request=resp.request), key="uuid")


def counted(c: TestClient, h: dict[str, str], w: World, own: bool) -> Response:
    """Coverage seen as an answer about one household: a new household of the own (or foreign) village
    is counted in the village's numbers, 404 when it is not (nor, for a helper, when its child is not
    taken on by the helper)."""
    village = w.town.villages[0 if own else 1]

    def households() -> Response:
        return c.get(f"{API}/coverage", params={"unit_id": village.id}, headers=h)

    before = households()
    m.household(w, own)
    after = households()
    if not (before.is_success and after.is_success):
        return after
    more = after.json()["totals"]["households"] > before.json()["totals"]["households"]
    return after if more else Response(404, json={"not_counted": True}, request=after.request)


def venue_workbook(w: World, own: bool) -> bytes:
    """The ledger layout with one venue of the own or the foreign side."""
    return venue_xlsx.export_venues(m.s(w), [m.venue(w, own)])


def profile(w: World, own: bool) -> int:
    return m.helper_profile(w, m.volunteer(w, own)).id or 0


CHECKLIST_ITEM = {"code": "matrix.one", "text_zh": "矩阵检查项", "text_en": "Matrix item", "measure_zh": "整改",
                  "deadline_days": 7}


def county_checklist(w: World, own: bool) -> int:
    """A new version of the generic inspection checklist owned by the own (or the neighbouring) county."""
    session = m.s(w)
    inspection_checklists.ensure_builtin(session)
    latest = session.execute(select(func.max(col(InspectionChecklistVersion.version))).where(
        col(InspectionChecklistVersion.code) == "generic")).scalar_one()
    session.add(InspectionChecklistVersion(code="generic", version=latest + 1, title_zh="县版", title_en="County",
                                           venue_types=["training", "school_shop"], items=[CHECKLIST_ITEM],
                                           owner_unit_id=m.county(w, own).id))
    session.commit()
    return int(latest) + 1


def principal_of(w: World, user_id: int) -> Principal:
    principal = accounts.principal_for(m.s(w), user_id, device_id=None, ip=None)
    assert principal is not None
    return principal


def report(w: World, own: bool, mine: bool = False) -> int:
    """A draft monthly report of the own grid (`mine`: of the caller's own village, which only it
    submits) or the foreign village (rendering one costs a map, so a draft is reused until a call
    submits it)."""
    key = ("report-mine" if mine else "report", own)
    kept = w.memo.get(key)
    if kept is not None:
        row = m.s(w).get(MonthlyReport, kept)
        assert row is not None
        m.s(w).refresh(row)
        if row.status != ReportStatus.submitted.value:
            return kept
    n = m.serial()
    month = f"{2001 + n // 12}-{n % 12 + 1:02d}"
    unit = m.s(w).get(OrgUnit, w.town.villages[0].id if own and mine else m.unit_id(w, own))
    assert unit is not None
    made = reports.generate(m.s(w), principal_of(w, own_or_foreign_user(w, own)), unit, month)
    m.s(w).commit()
    w.memo[key] = made.id or 0
    return made.id or 0


def report_way_up(w: World, own: bool, submitted: bool, mine: bool = False) -> int:
    """The way up of a monthly report of the own grid (its parent is the caller's village; `mine`: of
    the caller's village itself) or the foreign village: a draft, or submitted for the level above to
    decide."""
    report_id = report(w, own, mine)
    row = m.s(w).get(MonthlyReport, report_id)
    assert row is not None
    way_up = report_submissions.find(m.s(w), "monthly", row.org_unit_id, row.month)
    assert way_up is not None
    if submitted:
        way_up.status = row.status = ReportStatus.submitted.value
        way_up.submitted_at = way_up.first_submitted_at = clock.now()
        way_up.on_time = True
        m.s(w).add_all([way_up, row])
    m.s(w).commit()
    return way_up.id or 0


def submitted_report(w: World, own: bool) -> int:
    """A monthly report submitted to the level above (the own grid's goes to the caller's village)."""
    way_up = m.s(w).get(ReportSubmission, report_way_up(w, own, True))
    assert way_up is not None and way_up.monthly_report_id is not None
    return way_up.monthly_report_id


def local_unit(w: World, own: bool) -> OrgUnit:
    """A town under the own or the neighbouring county (incidents are handed down to it)."""
    if own:
        return w.town.town
    neighbour = m.county(w, False)
    code = "990102100000"
    row = m.s(w).execute(select(OrgUnit).where(col(OrgUnit.code) == code)).scalar_one_or_none()
    if row is not None:
        return row
    row = orgunits.create_unit(m.s(w), code=code, name="邻镇", level=OrgLevel.town, parent=neighbour)
    m.s(w).commit()
    return row


def incident_awaiting_feedback(w: World, own: bool) -> int:
    """An incident its county has handed down to a town, so feedback is owed."""
    session = m.s(w)
    incident_id = m.incident(w, own)
    opener = principal_of(w, make_user(session, m.county(w, own), Role.coordinator).id or 0)
    incidents.hand_off(session, opener, incident_id, to_unit_ids=[local_unit(w, own).id or 0], note=None)
    session.commit()
    return incident_id


def audit_entry(w: World, own: bool) -> int:
    """An audit entry about the own grid or the foreign village."""
    entry = audit.record(m.s(w), actor=principal_of(w, own_or_foreign_user(w, own)), action="matrix.probe",
                         object_type="matrix", org_unit_id=m.unit_id(w, own))
    m.s(w).commit()
    return entry.id or 0


def late_referral(c: TestClient, w: World, own: bool) -> int:
    """A referral whose acknowledgement is overdue."""
    referral_id = m.referral(c, w, own)
    row = m.s(w).get(Referral, referral_id)
    assert row is not None
    row.receive_due_at = clock.now() - timedelta(hours=1)
    m.s(w).add(row)
    m.s(w).commit()
    return referral_id


def overdue_assignment(w: World, own: bool) -> int:
    """An accepted assignment whose helper last visited a year ago."""
    assignment_id = m.assignment(w, own, AssignmentStatus.accepted)
    row = m.s(w).get(Assignment, assignment_id)
    assert row is not None
    row.answered_at = clock.now() - timedelta(days=365)
    m.s(w).add(row)
    m.s(w).commit()
    return assignment_id


def activity_type(w: World, own: bool) -> str:
    """An activity type of the own county (above the caller) or of a neighbouring county."""
    code = f"matrix_type_{m.serial()}"
    m.s(w).add(ActivityType(code=code, name_zh="矩阵类型", name_en="Matrix type",
                            owner_unit_id=m.county(w, own).id or 0, created_by=w.own_user_id))
    m.s(w).commit()
    return code


def unread_count(c: TestClient, h: dict[str, str], w: World, own: bool) -> Response:
    """Own: a notification to the caller is counted. Foreign: one to someone else is not (404 when it is not)."""
    before = c.get(f"{API}/notifications/unread-count", headers=h)
    m.notification(w, own)
    after = c.get(f"{API}/notifications/unread-count", headers=h)
    if not (before.is_success and after.is_success):
        return after
    counted = after.json()["unread"] > before.json()["unread"]
    return after if counted else Response(404, json={"not_counted": True}, request=after.request)


def institution_workbook(w: World, own: bool) -> bytes:
    """A register naming a school of the caller's village (own) or of the foreign one (refused: 422)."""
    return workbook.xlsx_bytes([workbook.Table(title="单位", header=["单位名称", "单位类型", "所属单位编码"], rows=[
        [f"矩阵小学{m.serial()}", "小学", w.town.villages[0 if own else 1].code]])])


def staff_workbook() -> bytes:
    return workbook.xlsx_bytes([workbook.Table(title="名单", header=["姓名", "身份证号码", "状态"],
                                               rows=[["矩阵教师", staff_number(), "拟聘用"]],
                                               text_columns=frozenset({1}))])


def institution_of_member(w: World, own: bool) -> tuple[int, int]:
    """A member (see matrix_support.staff_member) and its institution."""
    member = m.s(w).get(StaffMember, m.staff_member(w, own))
    assert member is not None and member.id is not None
    return member.institution_id, member.id


def listed_staff(c: TestClient, h: dict[str, str], w: World, own: bool) -> Response:
    institution_id, member_id = institution_of_member(w, own)
    return listed(member_id, c.get(f"{API}/institutions/{institution_id}/staff", headers=h))


ROWS: dict[str, Row] = {
    # The institution register and staff checks (从业查询, issue 18).
    "GET /api/v1/institutions": Row(lambda c, h, w, own: listed(m.institution(w, own), c.get(
        f"{API}/institutions", headers=h)), (A.institution_read,)),
    "POST /api/v1/institutions": Row(lambda c, h, w, own: c.post(f"{API}/institutions", headers=h, json={
        "name": "矩阵小学", "kind": "primary_school", "org_unit_id": w.town.villages[0 if own else 1].id}),
        (A.institution_write,)),
    "GET /api/v1/institutions/export.xlsx": Row(lambda c, h, w, own: c.get(
        f"{API}/institutions/export.xlsx", params={"unit_id": m.unit_id(w, own)}, headers=h), (A.institution_read,)),
    "POST /api/v1/institutions/import": Row(lambda c, h, w, own: c.post(f"{API}/institutions/import", headers=h, files={
        "file": ("institutions.xlsx", institution_workbook(w, own))}), (A.institution_write,), foreign_status=422),
    "GET /api/v1/institutions/{institution_id}": probe("institution.read"),
    "PATCH /api/v1/institutions/{institution_id}": probe("institution.write"),
    # Staff lists: callers at the town, over a school of its village (see matrix_support.staff_institution).
    "GET /api/v1/institutions/{institution_id}/staff": Row(listed_staff, (A.staff_read,), caller=m.town_caller),
    "POST /api/v1/institutions/{institution_id}/staff": Row(lambda c, h, w, own: (m.education(w), c.post(
        f"{API}/institutions/{m.staff_institution(w, own)}/staff", headers=h,
        json={"name": "矩阵教师", "id_number": staff_number()}))[1], (A.staff_manage,), caller=m.town_caller),
    "GET /api/v1/institutions/{institution_id}/staff/export.xlsx": Row(lambda c, h, w, own: c.get(
        f"{API}/institutions/{institution_of_member(w, own)[0]}/staff/export.xlsx", headers=h), (A.staff_read,),
        caller=m.town_caller),
    "POST /api/v1/institutions/{institution_id}/staff/import": Row(lambda c, h, w, own: (m.education(w), c.post(
        f"{API}/institutions/{m.staff_institution(w, own)}/staff/import", headers=h,
        files={"file": ("staff.xlsx", staff_workbook())}))[1], (A.staff_manage,), caller=m.town_caller),
    "GET /api/v1/staff/{member_id}": probe("staff.read"),
    "PATCH /api/v1/staff/{member_id}": probe("staff.manage"),
    "POST /api/v1/staff/{member_id}/checks": probe("staff.check"),
    "POST /api/v1/staff/{member_id}/reveal-id": Row(lambda c, h, w, own: c.post(
        f"{API}/staff/{m.staff_member(w, own)}/reveal-id", json={"reason": "入职查询"}, headers=h), (A.staff_check,),
        caller=m.town_caller),
    "GET /api/v1/staff-checks/overview": probe("staff.overview"),
    "GET /api/v1/staff-checks/unchecked": Row(lambda c, h, w, own: listed(m.institution(w, own), c.get(
        f"{API}/staff-checks/unchecked", headers=h), key="institution_id"), (A.staff_overview,)),
    "GET /api/v1/staff-checks/due": Row(lambda c, h, w, own: listed(m.staff_member(w, own), c.get(
        f"{API}/staff-checks/due", headers=h)), (A.staff_read,), caller=m.town_caller),
    # Users, devices, the org tree, the audit log.
    "GET /api/v1/me": Row(lambda c, h, w, own: c.get(f"{API}/me", headers=h), (), foreign=False),
    "POST /api/v1/me/password": Row(lambda c, h, w, own: c.post(f"{API}/me/password", headers=h, json={
        "current_password": TEST_PASSWORD, "new_password": "another-horse-battery"}), (), foreign=False),
    "GET /api/v1/users": Row(lambda c, h, w, own: listed(own_or_foreign_user(w, own), c.get(
        f"{API}/users", params={"limit": 500}, headers=h)), (A.user_read,)),
    "POST /api/v1/users": Row(lambda c, h, w, own: c.post(f"{API}/users", headers=h, json=m.grantable_user(w, own)),
                              (A.user_manage,)),
    "GET /api/v1/users/{user_id}": probe("user.read"),
    "PATCH /api/v1/users/{user_id}": probe("user.manage"),
    "GET /api/v1/devices": Row(lambda c, h, w, own: listed(device(w, own), c.get(f"{API}/devices", headers=h)), ()),
    "POST /api/v1/devices": probe("device.register"),
    "DELETE /api/v1/devices/{device_id}": Row(
        lambda c, h, w, own: c.delete(f"{API}/devices/{device(w, own)}", headers=h), ()),
    "GET /api/v1/org-units/mine": Row(lambda c, h, w, own: c.get(f"{API}/org-units/mine", headers=h),
                                      (A.orgunit_read,), foreign=False),
    "GET /api/v1/org-units/locate": Row(lambda c, h, w, own: c.get(f"{API}/org-units/locate", headers=h, params=dict(
        zip(("lon", "lat"), grid_point((0, 0) if own else (1, 0)), strict=True))), (A.orgunit_read,)),
    "GET /api/v1/org-units/{unit_id}": probe("orgunit.read"),
    "GET /api/v1/org-units/{unit_id}/children": Row(
        lambda c, h, w, own: c.get(f"{API}/org-units/{m.unit_id(w, own)}/children", headers=h), (A.orgunit_read,)),
    "GET /api/v1/org-units/{unit_id}/boundary": Row(
        lambda c, h, w, own: c.get(f"{API}/org-units/{m.unit_id(w, own)}/boundary", headers=h), (A.orgunit_read,)),
    "GET /api/v1/audit": Row(lambda c, h, w, own: listed(audit_entry(w, own), c.get(
        f"{API}/audit", params={"limit": 500}, headers=h)), (A.audit_read,)),
    "GET /api/v1/audit/verify": Row(lambda c, h, w, own: c.get(f"{API}/audit/verify", headers=h), (A.audit_read,),
                                    foreign=False),
    # Registry: households, children, 附件2 risk persons.
    "GET /api/v1/households": child_row(lambda c, h, w, own: listed(m.household(w, own).id, c.get(
        f"{API}/households", headers=h, params={"limit": 500})), A.household_read),
    # A grid outside the jurisdiction is refused like one that does not exist (422 household-grid-unknown).
    "POST /api/v1/households": Row(lambda c, h, w, own: c.post(f"{API}/households", headers=h, json={
        "address": "新登记1号", "grid_id": m.grid(w, own).id}), (A.household_write,), foreign_status=422),
    "GET /api/v1/households/{household_id}": probe("household.read", by_assignment=True),
    "PUT /api/v1/households/{household_id}": probe("household.write"),
    "GET /api/v1/households/{household_id}/members": child_row(
        lambda c, h, w, own: c.get(f"{API}/households/{m.household(w, own).id}/members", headers=h),
        A.child_read),
    "POST /api/v1/persons": Row(lambda c, h, w, own: c.post(f"{API}/persons", headers=h, json={
        "role": "child", "household_uuid": str(m.household(w, own).uuid), "name": "新儿童", "id_number": child_id()}),
        (A.child_write,)),
    "GET /api/v1/persons/{person_id}": probe("child.read", by_assignment=True),
    "PUT /api/v1/persons/{person_id}": probe("child.write"),
    "POST /api/v1/persons/{person_id}/reveal-id": probe("child.reveal_id", by_assignment=True),
    "GET /api/v1/persons/{person_id}/risk-history": child_row(
        lambda c, h, w, own: c.get(f"{API}/persons/{m.child(w, own).id}/risk-history", headers=h), A.child_read),
    "POST /api/v1/persons/{person_id}/risk-level": probe("risk.override", by_assignment=True),
    "GET /api/v1/risk-persons": Row(lambda c, h, w, own: listed(m.risk_person(w, own), c.get(
        f"{API}/risk-persons", headers=h)), (A.risk_person_read,)),
    "POST /api/v1/risk-persons": probe("risk_person.write"),
    "GET /api/v1/risk-persons/{risk_person_id}": probe("risk_person.read"),
    "PUT /api/v1/risk-persons/{risk_person_id}": Row(lambda c, h, w, own: c.put(
        f"{API}/risk-persons/{m.risk_person(w, own)}", json={"version": 1, "control_measures": "每周走访"}, headers=h),
        (A.risk_person_write,)),
    "POST /api/v1/risk-persons/{risk_person_id}/open-sealed": probe("sealed.open"),
    "GET /api/v1/risk-persons/overdue": Row(lambda c, h, w, own: listed(m.overdue_risk_person(w, own), c.get(
        f"{API}/risk-persons/overdue", headers=h)), (A.risk_person_read,)),
    "POST /api/v1/risk-persons/{risk_person_id}/check-ins": probe("risk_person.control", A.risk_person_read,
                                                                 A.risk_person_control),
    # The household must be in the caller's jurisdiction too: own entry with own household, foreign with foreign.
    "POST /api/v1/risk-persons/{risk_person_id}/household-link": Row(lambda c, h, w, own: c.post(
        f"{API}/risk-persons/{m.risk_person(w, own)}/household-link", json={"household_id": m.household(w, own).id},
        headers=h), (A.risk_person_write, A.household_read)),
    "DELETE /api/v1/risk-persons/{risk_person_id}/household-link": Row(lambda c, h, w, own: c.delete(
        f"{API}/risk-persons/{m.linked_risk_person(w, own)}/household-link", headers=h), (A.risk_person_write,)),
    # Checklist templates are the same for everyone.
    "GET /api/v1/checklists": Row(lambda c, h, w, own: c.get(f"{API}/checklists", headers=h), (), foreign=False),
    "GET /api/v1/checklists/{code}/{version}": Row(
        lambda c, h, w, own: c.get(f"{API}/checklists/six-looks-six-asks/1", headers=h), (), foreign=False),
    "POST /api/v1/checklists/{code}": probe("checklist.manage"),
    # Visits, referrals, offline sync, ledgers.
    "GET /api/v1/visits": child_row(lambda c, h, w, own: listed(m.visit(c, w, own), c.get(f"{API}/visits",
                                                                                         headers=h)), A.visit_read),
    "GET /api/v1/visits/{visit_id}": probe("visit.read", by_assignment=True),
    "GET /api/v1/referrals": child_row(lambda c, h, w, own: listed(m.referral(c, w, own), c.get(
        f"{API}/referrals", headers=h)), A.referral_read),
    "GET /api/v1/referrals/{referral_id}": probe("referral.read", by_assignment=True),
    "POST /api/v1/referrals/{referral_id}/receive": probe("referral.manage", by_assignment=True),
    # Mandatory reports filed directly (issue 16): the reporter's own only; someone else's is 404.
    "POST /api/v1/mandatory-reports": probe("mandatory_report.file"),
    "GET /api/v1/mandatory-reports/mine": Row(lambda c, h, w, own: listed(m.mandatory_report(w, own), c.get(
        f"{API}/mandatory-reports/mine", headers=h)), (A.mandatory_report_file,)),
    "GET /api/v1/mandatory-reports/{report_id}": Row(lambda c, h, w, own: c.get(
        f"{API}/mandatory-reports/{m.mandatory_report(w, own)}", headers=h), (A.mandatory_report_file,)),
    "POST /api/v1/referrals/{referral_id}/handle": child_row(
        lambda c, h, w, own: c.post(f"{API}/referrals/{received_referral(c, w, own)}/handle", json={}, headers=h),
        A.referral_manage),
    "POST /api/v1/sync/push": probe("visit.create", by_assignment=True),
    "GET /api/v1/sync/pull": child_row(pull, A.household_read),
    "GET /api/v1/ledgers/{annex}.xlsx": probe("ledger.export", A.child_read, A.ledger_export, by_assignment=True),
    "POST /api/v1/ledgers/{annex}/import": probe("ledger.import", A.risk_person_read, A.risk_person_write,
                                                 A.ledger_import),
    # Photos.
    "PUT /api/v1/media/{client_uuid}": probe("media.upload"),
    "GET /api/v1/media/{client_uuid}": probe("media.read", by_assignment=True),
    "GET /api/v1/media/{client_uuid}/upload": child_row(
        lambda c, h, w, own: c.get(f"{API}/media/{m.photo(c, w, own)}/upload", headers=h), A.media_upload),
    "HEAD /api/v1/media/{client_uuid}/upload": child_row(
        lambda c, h, w, own: c.head(f"{API}/media/{m.photo(c, w, own)}/upload", headers=h), A.media_upload),
    "GET /api/v1/media": child_row(listed_photo, A.media_read),
    "GET /api/v1/media/{client_uuid}/link": child_row(
        lambda c, h, w, own: c.get(f"{API}/media/{ready_photo(c, w, own)}/link", headers=h), A.media_read),
    "GET /api/v1/media/{client_uuid}/original": probe("media.original", by_assignment=True),
    # Venues, inspections, problems, penalties.
    "GET /api/v1/venues": probe("venue.read"),
    "POST /api/v1/venues": probe("venue.write"),
    "GET /api/v1/venues/export.xlsx": Row(lambda c, h, w, own: c.get(f"{API}/venues/export.xlsx", headers=h, params={
        "org_unit_id": m.unit_id(w, own)}), (A.venue_read,)),
    "POST /api/v1/venues/import": Row(lambda c, h, w, own: c.post(f"{API}/venues/import", headers=h, files={
        "file": ("venues.xlsx", venue_workbook(w, own))}), (A.venue_write,), foreign_status=422),
    "GET /api/v1/venues/{venue_id}": Row(lambda c, h, w, own: c.get(f"{API}/venues/{m.venue(w, own).id}", headers=h),
                                         (A.venue_read,)),
    "PATCH /api/v1/venues/{venue_id}": Row(lambda c, h, w, own: c.patch(
        f"{API}/venues/{m.venue(w, own).id}", json={"name": "改名场所"}, headers=h), (A.venue_write,)),
    "GET /api/v1/venues/{venue_id}/risk": Row(
        lambda c, h, w, own: c.get(f"{API}/venues/{m.venue(w, own).id}/risk", headers=h), (A.venue_read,)),
    "POST /api/v1/inspections": probe("inspection.create"),
    "GET /api/v1/inspections": Row(lambda c, h, w, own: c.get(f"{API}/inspections", headers=h, params={
        "venue_id": m.venue(w, own).id}), (A.inspection_read,)),
    "GET /api/v1/inspections/{inspection_id}": Row(lambda c, h, w, own: c.get(
        f"{API}/inspections/{m.problem(w, own).found_in_inspection_id}", headers=h), (A.inspection_read,)),
    "GET /api/v1/inspections/{inspection_id}/record.pdf": Row(lambda c, h, w, own: c.get(
        f"{API}/inspections/{m.problem(w, own).found_in_inspection_id}/record.pdf", headers=h), (A.inspection_read,)),
    "GET /api/v1/inspections/{inspection_id}/rectification-notice.pdf": Row(lambda c, h, w, own: c.get(
        f"{API}/inspections/{m.problem(w, own).found_in_inspection_id}/rectification-notice.pdf", headers=h),
        (A.inspection_read,)),
    "GET /api/v1/inspection-checklists": Row(lambda c, h, w, own: c.get(f"{API}/inspection-checklists", headers=h),
                                             (A.venue_read,), foreign=False),
    "GET /api/v1/inspection-checklists/{checklist_code}/{checklist_version}": Row(lambda c, h, w, own: c.get(
        f"{API}/inspection-checklists/generic/{county_checklist(w, own)}", headers=h), (A.venue_read,)),
    "POST /api/v1/inspection-checklists/{checklist_code}/versions": Row(lambda c, h, w, own: c.post(
        f"{API}/inspection-checklists/generic/versions", headers=h,
        json={"unit_id": m.county(w, own).id, "items": [CHECKLIST_ITEM]}), (A.checklist_manage,),
        caller=county_caller),
    "GET /api/v1/problems": probe("inspection.read"),
    "GET /api/v1/problems/overdue": Row(lambda c, h, w, own: c.get(f"{API}/problems/overdue", headers=h, params={
        "org_unit_id": m.unit_id(w, own)}), (A.inspection_read,)),
    "GET /api/v1/problems/{problem_id}": Row(
        lambda c, h, w, own: c.get(f"{API}/problems/{m.problem(w, own).id}", headers=h), (A.inspection_read,)),
    "PATCH /api/v1/problems/{problem_id}": probe("problem.update"),
    "POST /api/v1/penalties": Row(lambda c, h, w, own: c.post(f"{API}/penalties", headers=h, json={
        "venue_id": m.venue(w, own).id, "kind": "warning"}), (A.inspection_create,)),
    "GET /api/v1/penalties": Row(lambda c, h, w, own: c.get(f"{API}/penalties", headers=h, params={
        "venue_id": m.venue(w, own).id}), (A.inspection_read,)),
    # Weekly joint-enforcement plans, rules, availability, calendars.
    "GET /api/v1/schedules/rules/{org_unit_id}": Row(
        lambda c, h, w, own: c.get(f"{API}/schedules/rules/{m.unit_id(w, own)}", headers=h), (A.schedule_read,)),
    "PUT /api/v1/schedules/rules/{org_unit_id}": Row(
        lambda c, h, w, own: c.put(f"{API}/schedules/rules/{m.unit_id(w, own)}", json={}, headers=h),
        (A.schedule_generate,)),
    # Enforcement duties per county (issue 18): read at any unit, set on a county.
    "GET /api/v1/schedules/duties": Row(lambda c, h, w, own: c.get(
        f"{API}/schedules/duties", params={"unit_id": m.unit_id(w, own)}, headers=h), (A.schedule_read,)),
    "PUT /api/v1/schedules/duties": Row(lambda c, h, w, own: c.put(
        f"{API}/schedules/duties", params={"unit_id": m.county(w, own).id}, headers=h, json={"duties": [
            {"agency": "culture_tourism", "venue_type": "amusement_arcade", "interval_days": 28}]}),
        (A.schedule_generate,), caller=county_caller),
    "GET /api/v1/schedules/availability/{user_id}": Row(lambda c, h, w, own: c.get(
        f"{API}/schedules/availability/{own_or_foreign_user(w, own)}", headers=h), (A.schedule_read,)),
    # Officers set their own weekdays; someone else's needs the planner's right.
    "PUT /api/v1/schedules/availability/{user_id}": Row(lambda c, h, w, own: c.put(
        f"{API}/schedules/availability/{own_or_foreign_user(w, own)}", json={"weekdays": [0, 2, 4]}, headers=h),
        (A.schedule_read, A.schedule_generate)),
    "POST /api/v1/schedules/generate": probe("schedule.generate"),
    "GET /api/v1/schedules/feed-url": Row(lambda c, h, w, own: c.get(f"{API}/schedules/feed-url", headers=h), (),
                                          foreign=False),
    # Revoking a calendar URL: one's own (answers the new URL), or a user's one manages (issue 14).
    "POST /api/v1/schedules/feed-url/revoke": Row(
        lambda c, h, w, own: c.post(f"{API}/schedules/feed-url/revoke", headers=h), (), foreign=False),
    "POST /api/v1/schedules/feed-url/{user_id}/revoke": Row(lambda c, h, w, own: c.post(
        f"{API}/schedules/feed-url/{m.managed_user(w, own)}/revoke", headers=h), (A.user_manage,),
        caller=PROBES["user.manage"].caller),
    "GET /api/v1/schedules/mine.ics": Row(lambda c, h, w, own: c.get(f"{API}/schedules/mine.ics", headers=h), (),
                                          foreign=False),
    "GET /api/v1/schedules": probe("schedule.read"),
    "GET /api/v1/schedules/{plan_id}": Row(
        lambda c, h, w, own: c.get(f"{API}/schedules/{m.plan(w, own)}", headers=h), (A.schedule_read,)),
    "GET /api/v1/schedules/{plan_id}/check": Row(
        lambda c, h, w, own: c.get(f"{API}/schedules/{m.plan(w, own)}/check", headers=h), (A.schedule_read,)),
    "POST /api/v1/schedules/{plan_id}/publish": probe("schedule.publish"),
    "GET /api/v1/schedules/{plan_id}/compliance": Row(
        lambda c, h, w, own: c.get(f"{API}/schedules/{m.plan(w, own)}/compliance", headers=h), (A.schedule_read,)),
    "GET /api/v1/schedules/{plan_id}/export.xlsx": Row(
        lambda c, h, w, own: c.get(f"{API}/schedules/{m.plan(w, own)}/export.xlsx", headers=h), (A.schedule_read,)),
    # Helpers and their assignments.
    "GET /api/v1/helpers": Row(lambda c, h, w, own: listed(profile(w, own), c.get(f"{API}/helpers", headers=h)),
                               (A.helper_read,)),
    "POST /api/v1/helpers": probe("helper.manage"),
    "PATCH /api/v1/helpers/{helper_id}": Row(lambda c, h, w, own: c.patch(
        f"{API}/helpers/{profile(w, own)}", json={"capacity": 3}, headers=h), (A.helper_manage,)),
    "POST /api/v1/helpers/proposals": Row(lambda c, h, w, own: c.post(f"{API}/helpers/proposals", headers=h),
                                          (A.assignment_confirm,), foreign=False),
    "GET /api/v1/helpers/children-without-helper": child_row(lambda c, h, w, own: c.get(
        f"{API}/helpers/children-without-helper", params={"unit_id": m.unit_id(w, own)}, headers=h),
        A.child_read, A.helper_read),
    "GET /api/v1/helpers/assignments": Row(lambda c, h, w, own: listed(
        m.assignment(w, own, AssignmentStatus.proposed), c.get(f"{API}/helpers/assignments", headers=h)),
        (A.assignment_read,)),
    "GET /api/v1/helpers/assignments/{assignment_id}": probe("assignment.read"),
    "POST /api/v1/helpers/assignments/{assignment_id}/confirm": probe("assignment.confirm"),
    "POST /api/v1/helpers/assignments/{assignment_id}/reject": Row(lambda c, h, w, own: c.post(
        f"{API}/helpers/assignments/{m.assignment(w, own, AssignmentStatus.proposed)}/reject", headers=h),
        (A.assignment_confirm,)),
    "POST /api/v1/helpers/assignments/{assignment_id}/accept": probe("assignment.answer"),
    "POST /api/v1/helpers/assignments/{assignment_id}/decline": Row(lambda c, h, w, own: c.post(
        f"{API}/helpers/assignments/{m.assignment(w, own, AssignmentStatus.offered)}/decline", headers=h),
        (A.assignment_answer,)),
    "POST /api/v1/helpers/assignments/{assignment_id}/end": Row(lambda c, h, w, own: c.post(
        f"{API}/helpers/assignments/{m.assignment(w, own, AssignmentStatus.accepted)}/end", headers=h),
        (A.assignment_confirm,)),
    "POST /api/v1/helpers/assignments/{assignment_id}/followups": Row(lambda c, h, w, own: c.post(
        f"{API}/helpers/assignments/{m.assignment(w, own, AssignmentStatus.accepted)}/followups",
        json={"note": "随访正常"}, headers=h), (A.assignment_answer,)),
    "GET /api/v1/helpers/followups/overdue": Row(lambda c, h, w, own: listed(overdue_assignment(w, own), c.get(
        f"{API}/helpers/followups/overdue", headers=h), key="assignment_id"), (A.assignment_confirm,)),
    # Cases (个案, issue 16); police see the cases a referral opened, which the makers open.
    "GET /api/v1/cases": child_row(lambda c, h, w, own: listed(m.case(c, w, own), c.get(f"{API}/cases", headers=h)),
                                   A.case_read),
    # A child outside the jurisdiction is refused like one that does not exist (422 case-child-invalid).
    "POST /api/v1/cases": Row(lambda c, h, w, own: c.post(f"{API}/cases", headers=h, json={
        "child_id": m.child(w, own).id, "reason": "专班研判"}), (A.case_manage,), foreign_status=422),
    "GET /api/v1/cases/{case_id}": probe("case.read", by_assignment=True),
    "POST /api/v1/cases/{case_id}/activate": probe("case.manage"),
    "POST /api/v1/cases/{case_id}/closure": child_row(lambda c, h, w, own: c.post(
        f"{API}/cases/{m.case(c, w, own)}/closure", json={"reason": "risk_lowered"}, headers=h), A.case_read),
    "POST /api/v1/cases/{case_id}/closure/approve": Row(lambda c, h, w, own: c.post(
        f"{API}/cases/{m.pending_case(c, w, own)}/closure/approve", headers=h), (A.case_manage,)),
    "POST /api/v1/cases/{case_id}/closure/reject": Row(lambda c, h, w, own: c.post(
        f"{API}/cases/{m.pending_case(c, w, own)}/closure/reject", json={"note": "再观察"}, headers=h),
        (A.case_manage,)),
    "POST /api/v1/cases/{case_id}/close": Row(lambda c, h, w, own: c.post(
        f"{API}/cases/{m.case(c, w, own)}/close", json={"reason": "risk_lowered"}, headers=h), (A.case_manage,)),
    "POST /api/v1/cases/{case_id}/reopen": Row(lambda c, h, w, own: c.post(
        f"{API}/cases/{m.closed_case(c, w, own)}/reopen", json={"reason": "再次发现风险"}, headers=h),
        (A.case_manage,)),
    # The police case register (立案), its weekly report, one-case-one-review (一案一倒查): callers at the
    # town (the station), the foreign side another town of the county.
    "GET /api/v1/police-cases": Row(lambda c, h, w, own: listed(m.police_case(w, own), c.get(
        f"{API}/police-cases", headers=h)), (A.police_case_read,), caller=m.town_caller),
    "POST /api/v1/police-cases": Row(lambda c, h, w, own: c.post(f"{API}/police-cases", headers=h, json={
        "unit_id": m.station(w, own).id, "case_number": f"N-{m.serial()}", "category": "rape"}),
        (A.police_case_manage,), caller=m.town_caller),
    "GET /api/v1/police-cases/categories": Row(lambda c, h, w, own: c.get(f"{API}/police-cases/categories",
                                                                          headers=h),
                                               (A.police_case_read,), foreign=False, caller=m.town_caller),
    "GET /api/v1/police-cases/weekly": Row(lambda c, h, w, own: c.get(f"{API}/police-cases/weekly", headers=h, params={
        "unit_id": m.station(w, own).id, "week": "2026-W40"}), (A.police_case_read,), caller=m.town_caller),
    "GET /api/v1/police-cases/weekly.xlsx": Row(lambda c, h, w, own: c.get(
        f"{API}/police-cases/weekly.xlsx", headers=h, params={"unit_id": m.station(w, own).id, "week": "2026-W40"}),
        (A.police_case_read,), caller=m.town_caller),
    "GET /api/v1/police-cases/weekly/status": Row(lambda c, h, w, own: c.get(
        f"{API}/police-cases/weekly/status", headers=h, params={"unit_id": m.station(w, own).id, "week": "2026-W40"}),
        (A.police_case_read,), caller=m.town_caller),
    "POST /api/v1/police-cases/weekly/{week}/submit": Row(lambda c, h, w, own: c.post(
        f"{API}/police-cases/weekly/2026-W40/submit", json={"unit_id": m.station(w, own).id}, headers=h),
        (A.police_case_manage,), caller=m.town_caller),
    "GET /api/v1/police-cases/weekly/{week}/submissions": Row(lambda c, h, w, own: c.get(
        f"{API}/police-cases/weekly/2026-W40/submissions", params={"unit_id": m.station(w, own).id}, headers=h),
        (A.police_case_read,), caller=m.town_caller),
    "GET /api/v1/police-cases/{police_case_id}": probe("police_case.read"),
    "PATCH /api/v1/police-cases/{police_case_id}": Row(lambda c, h, w, own: c.patch(
        f"{API}/police-cases/{m.police_case(w, own)}", json={"victims": 2}, headers=h), (A.police_case_manage,),
        caller=m.town_caller),
    "POST /api/v1/police-cases/{police_case_id}/status": probe("police_case.manage"),
    # Supervision of any unit (督办, 挂牌督办) and typical-case notices (典型案例通报), issue 18.
    "GET /api/v1/supervision/problems": probe("supervision.read"),
    "POST /api/v1/supervision/problems": probe("supervision.manage"),
    "GET /api/v1/supervision/problems/{problem_id}": Row(lambda c, h, w, own: c.get(
        f"{API}/supervision/problems/{m.supervised_problem(w, own)}", headers=h), (A.supervision_read,)),
    "PATCH /api/v1/supervision/problems/{problem_id}": Row(lambda c, h, w, own: c.patch(
        f"{API}/supervision/problems/{m.supervised_problem(w, own)}", headers=h, json={
            "deadline_date": (clock.china_date(clock.now()) + timedelta(days=30)).isoformat()}),
        (A.supervision_manage,)),
    "POST /api/v1/supervision/problems/{problem_id}/rectification": probe("supervision.rectify"),
    "POST /api/v1/supervision/problems/{problem_id}/verification": Row(lambda c, h, w, own: c.post(
        f"{API}/supervision/problems/{m.supervised_problem(w, own, submitted=True)}/verification",
        json={"passed": True}, headers=h), (A.supervision_manage,)),
    "POST /api/v1/supervision/problems/{problem_id}/supervise": Row(lambda c, h, w, own: c.post(
        f"{API}/supervision/problems/{m.supervised_problem(w, own, below=True)}/supervise", json={}, headers=h),
        (A.supervision_manage,)),
    "GET /api/v1/supervision/summary": Row(lambda c, h, w, own: c.get(
        f"{API}/supervision/summary", params={"unit_id": m.unit_id(w, own)}, headers=h), (A.supervision_read,)),
    "POST /api/v1/notices": probe("notice.publish"),
    "GET /api/v1/notices": Row(lambda c, h, w, own: listed(m.notice(w, own), c.get(f"{API}/notices", headers=h)),
                               (A.notice_read,)),
    "GET /api/v1/notices/{notice_id}": probe("notice.read"),
    "POST /api/v1/notices/{notice_id}/acknowledge": Row(lambda c, h, w, own: c.post(
        f"{API}/notices/{m.notice(w, own)}/acknowledge", headers=h), (A.notice_read,)),
    "GET /api/v1/notices/{notice_id}/receipts": Row(lambda c, h, w, own: c.get(
        f"{API}/notices/{m.notice(w, own, published_by_village=True)}/receipts", headers=h), (A.notice_publish,)),
    "POST /api/v1/case-reviews": probe("case_review.manage"),
    "GET /api/v1/case-reviews": Row(lambda c, h, w, own: listed(m.case_review(w, own), c.get(
        f"{API}/case-reviews", headers=h)), (A.police_case_read,), caller=m.town_caller),
    "GET /api/v1/case-reviews/{review_id}": Row(lambda c, h, w, own: c.get(
        f"{API}/case-reviews/{m.case_review(w, own)}", headers=h), (A.police_case_read,), caller=m.town_caller),
    "PATCH /api/v1/case-reviews/{review_id}": Row(lambda c, h, w, own: c.patch(
        f"{API}/case-reviews/{m.case_review(w, own)}", json={"analysis": "更新"}, headers=h),
        (A.case_review_manage,), caller=m.town_caller),
    "POST /api/v1/case-reviews/{review_id}/findings": Row(lambda c, h, w, own: c.post(
        f"{API}/case-reviews/{m.case_review(w, own)}/findings", headers=h, json={
            "subject": "unit", "org_unit_id": m.station(w, own).id, "agency": "education", "finding": "未开展教育"}),
        (A.case_review_manage,), caller=m.town_caller),
    "POST /api/v1/case-reviews/{review_id}/tasks": Row(lambda c, h, w, own: c.post(
        f"{API}/case-reviews/{m.case_review(w, own)}/tasks", headers=h, json={
            "subject": "unit", "org_unit_id": m.station(w, own).id, "agency": "education", "description": "整改",
            "deadline_date": (clock.china_date(clock.now()) + timedelta(days=60)).isoformat()}),
        (A.case_review_manage,), caller=m.town_caller),
    "POST /api/v1/case-reviews/{review_id}/tasks/{task_id}/done": Row(lambda c, h, w, own: c.post(
        "{}/case-reviews/{}/tasks/{}/done".format(API, *m.review_task(w, own)), json={"note": "已完成"}, headers=h),
        (A.case_review_manage,), caller=m.town_caller),
    # Services of cases and referrals between units (issue 16). The own service or referral is addressed
    # to the caller's own unit (so its staff or a police station see and handle it; a helper of that
    # unit does not: it sees those of the cases of its own children only, and never answers a referral);
    # the foreign one to a unit of village 1, for a case of village 1.
    "GET /api/v1/service-kinds": Row(lambda c, h, w, own: c.get(f"{API}/service-kinds", headers=h), (),
                                     foreign=False),
    "POST /api/v1/service-kinds": Row(lambda c, h, w, own: c.post(f"{API}/service-kinds", headers=h, json={
        "code": f"matrix_{m.serial()}", "name_zh": "矩阵服务", "name_en": "Matrix service"}), (A.service_manage,),
        foreign=False, caller=m.county_caller),  # kinds are every county's: county coordinators add them
    "POST /api/v1/cases/{case_id}/services": probe("service.manage"),
    "GET /api/v1/cases/{case_id}/services": Row(lambda c, h, w, own: (lambda row: listed(row.id, c.get(
        f"{API}/cases/{row.case_id}/services", headers=h)))(m.case_service(c, w, own)), (A.service_read,),
        by_assignment=True),
    "GET /api/v1/services": Row(lambda c, h, w, own: listed(m.service(c, w, own), c.get(f"{API}/services",
                                                                                         headers=h)),
                                (A.service_read,), by_assignment=True),
    "GET /api/v1/services/{service_id}": probe("service.read", by_assignment=True),
    "POST /api/v1/services/{service_id}/steps": probe("service.handle", by_assignment=True),
    # Referring a whole case is the coordinators' (service.manage, checked after service.handle).
    "POST /api/v1/cases/{case_id}/referrals": Row(lambda c, h, w, own: c.post(
        f"{API}/cases/{m.case(c, w, own)}/referrals", headers=h,
        json={"to_unit_id": w.town.villages[0].id, "to_agency": "judicial"}), (A.service_handle, A.service_manage)),
    "GET /api/v1/agency-referrals": Row(lambda c, h, w, own: listed(m.agency_referral(c, w, own), c.get(
        f"{API}/agency-referrals", headers=h)), (A.service_read,), by_assignment=True),
    "GET /api/v1/agency-referrals/{agency_referral_id}": Row(lambda c, h, w, own: c.get(
        f"{API}/agency-referrals/{m.agency_referral(c, w, own)}", headers=h), (A.service_read,), by_assignment=True),
    "POST /api/v1/agency-referrals/{agency_referral_id}/accept": Row(lambda c, h, w, own: c.post(
        f"{API}/agency-referrals/{m.agency_referral(c, w, own)}/accept", headers=h), (A.service_handle,),
        by_assignment=True, refused=HELPER),
    "POST /api/v1/agency-referrals/{agency_referral_id}/decline": Row(lambda c, h, w, own: c.post(
        f"{API}/agency-referrals/{m.agency_referral(c, w, own)}/decline", json={"reason": "无法提供"}, headers=h),
        (A.service_handle,), by_assignment=True, refused=HELPER),
    "POST /api/v1/agency-referrals/{agency_referral_id}/complete": Row(lambda c, h, w, own: c.post(
        f"{API}/agency-referrals/{m.agency_referral(c, w, own, AgencyReferralStatus.accepted)}/complete",
        json={"outcome": "已办结"}, headers=h), (A.service_handle,), by_assignment=True, refused=HELPER),
    # The inbox: one's own notifications only.
    "GET /api/v1/notifications": Row(lambda c, h, w, own: listed(m.notification(w, own), c.get(
        f"{API}/notifications", headers=h)), (A.notification_read,)),
    "GET /api/v1/notifications/unread-count": Row(unread_count, (A.notification_read,)),
    "POST /api/v1/notifications/{notification_id}/read": probe("notification.read"),
    # Delivery status and channel health (issue 19): the caller's area only.
    "GET /api/v1/notifications/delivery": Row(lambda c, h, w, own: listed(m.notification(w, own), c.get(
        f"{API}/notifications/delivery", headers=h)), (A.notification_delivery_read,)),
    "GET /api/v1/notifications/channels/health": probe("notification.health.read"),
    # 2112 incidents (callers at the county; the foreign side is a neighbouring county).
    "POST /api/v1/incidents": probe("incident.create"),
    "GET /api/v1/incidents": Row(lambda c, h, w, own: listed(m.incident(w, own),
                                                             c.get(f"{API}/incidents", headers=h)), (A.incident_read,),
                                 caller=county_caller),
    "GET /api/v1/incidents/{incident_id}": probe("incident.read"),
    "POST /api/v1/incidents/{incident_id}/handoffs": probe("incident.handoff"),
    "POST /api/v1/incidents/{incident_id}/feedback": Row(lambda c, h, w, own: c.post(
        f"{API}/incidents/{incident_awaiting_feedback(w, own)}/feedback", json={"note": "已核实"}, headers=h),
        (A.incident_handoff,), caller=county_caller),
    "POST /api/v1/incidents/{incident_id}/close": probe("incident.close"),
    "GET /api/v1/escalations/referrals": Row(lambda c, h, w, own: listed(late_referral(c, w, own), c.get(
        f"{API}/escalations/referrals", headers=h), key="referral_id"), (A.referral_read,)),
    # Coverage, campaigns, monthly reports.
    # Review of field work (审核, issue 17).
    "POST /api/v1/visits/{visit_id}/review": probe("review.manage"),
    "GET /api/v1/visits/{visit_id}/reviews": probe("review.read"),
    "POST /api/v1/inspections/{inspection_id}/review": Row(lambda c, h, w, own: c.post(
        f"{API}/inspections/{m.problem(w, own).found_in_inspection_id}/review", json={"state": "approved"},
        headers=h), (A.review_manage,)),
    "GET /api/v1/inspections/{inspection_id}/reviews": Row(lambda c, h, w, own: c.get(
        f"{API}/inspections/{m.problem(w, own).found_in_inspection_id}/reviews", headers=h), (A.review_read,)),
    "POST /api/v1/inspections/{inspection_id}/review/response": Row(lambda c, h, w, own: c.post(
        f"{API}/inspections/{m.inspection_with_issues(w, own)}/review/response", json={"note": "已补签"},
        headers=h), (A.inspection_create,)),
    "GET /api/v1/reviews/queue": Row(lambda c, h, w, own: listed(m.visit(c, w, own), c.get(
        f"{API}/reviews/queue", params={"state": "pending", "limit": 500}, headers=h), key="record_id"),
        (A.review_read,)),
    "GET /api/v1/reviews/summary": Row(lambda c, h, w, own: c.get(
        f"{API}/reviews/summary", params={"unit_id": m.unit_id(w, own)}, headers=h), (A.review_read,)),
    "GET /api/v1/reviews/settings": Row(lambda c, h, w, own: c.get(
        f"{API}/reviews/settings", params={"unit_id": m.station(w, own).id}, headers=h), (A.review_read,),
        caller=m.town_caller),
    "PUT /api/v1/reviews/settings": Row(lambda c, h, w, own: c.put(
        f"{API}/reviews/settings", params={"unit_id": m.station(w, own).id}, json={"approved_only": False},
        headers=h), (A.review_manage,), caller=m.town_caller),
    "GET /api/v1/coverage": child_row(counted, A.coverage_read),
    "GET /api/v1/coverage/tiles/{z}/{x}/{y}.mvt": Row(
        lambda c, h, w, own: c.get(f"{API}/coverage/tiles/0/0/0.mvt", headers=h), (A.coverage_read,),
        foreign=False, postgis_only=True),
    "GET /api/v1/coverage/not-visited": probe("coverage.households", by_assignment=True),
    "GET /api/v1/campaigns": Row(lambda c, h, w, own: c.get(f"{API}/campaigns", headers=h), (A.coverage_read,),
                                 foreign=False),
    "POST /api/v1/campaigns": probe("campaign.manage"),
    "GET /api/v1/campaigns/period": Row(lambda c, h, w, own: c.get(f"{API}/campaigns/period", headers=h, params={
        "month": "2026-03"}), (A.coverage_read,), foreign=False),
    "POST /api/v1/reports/monthly": probe("report.generate"),
    "GET /api/v1/reports/monthly": probe("report.read"),
    "GET /api/v1/reports/monthly/status": Row(lambda c, h, w, own: c.get(
        f"{API}/reports/monthly/status", params={"unit_id": m.unit_id(w, own), "month": "2026-03"}, headers=h),
        (A.report_read,)),
    "POST /api/v1/reports/monthly/{report_id}/submit": Row(lambda c, h, w, own: c.post(
        f"{API}/reports/monthly/{report(w, own, True)}/submit", headers=h), (A.report_generate,)),
    "POST /api/v1/reports/monthly/{report_id}/approve": Row(lambda c, h, w, own: c.post(
        f"{API}/reports/monthly/{submitted_report(w, own)}/approve", headers=h), (A.report_generate,)),
    "POST /api/v1/reports/monthly/{report_id}/return": Row(lambda c, h, w, own: c.post(
        f"{API}/reports/monthly/{submitted_report(w, own)}/return", json={"comment": "请补充"}, headers=h),
        (A.report_generate,)),
    "PUT /api/v1/campaigns/report-due-rule": Row(lambda c, h, w, own: c.put(
        f"{API}/campaigns/report-due-rule", json={"year": 2026, "report_due_rule": "same_month",
                                                  "report_due_day": 17}, headers=h),
        (A.campaign_manage,), foreign=False, caller=county_caller),
    # Reports that go up and come back (issue 17): the level above decides; the kind's right first.
    "GET /api/v1/report-submissions": Row(lambda c, h, w, own: listed(report_way_up(w, own, False), c.get(
        f"{API}/report-submissions", params={"unit_id": m.unit_id(w, own)}, headers=h)), (A.report_read,)),
    "POST /api/v1/report-submissions": Row(lambda c, h, w, own: c.post(
        f"{API}/report-submissions", json={"kind": "monthly", "period": "2026-03",
                                           "unit_id": w.town.villages[0].id if own else m.unit_id(w, own),
                                           "progress": "进展"}, headers=h), (A.report_read, A.report_generate)),
    "GET /api/v1/report-submissions/status": Row(lambda c, h, w, own: c.get(
        f"{API}/report-submissions/status", params={"kind": "monthly", "period": "2026-03",
                                                    "unit_id": m.unit_id(w, own)}, headers=h), (A.report_read,)),
    "GET /api/v1/report-submissions/{report_submission_id}": Row(lambda c, h, w, own: c.get(
        f"{API}/report-submissions/{report_way_up(w, own, False)}", headers=h), (A.report_read,)),
    "POST /api/v1/report-submissions/{report_submission_id}/submit": Row(lambda c, h, w, own: c.post(
        f"{API}/report-submissions/{report_way_up(w, own, False, True)}/submit", headers=h),
        (A.report_read, A.report_generate)),
    "POST /api/v1/report-submissions/{report_submission_id}/approve": Row(lambda c, h, w, own: c.post(
        f"{API}/report-submissions/{report_way_up(w, own, True)}/approve", headers=h),
        (A.report_read, A.report_generate)),
    "POST /api/v1/report-submissions/{report_submission_id}/return": Row(lambda c, h, w, own: c.post(
        f"{API}/report-submissions/{report_way_up(w, own, True)}/return", json={"comment": "请补充"}, headers=h),
        (A.report_read, A.report_generate)),
    "GET /api/v1/reports/monthly/{report_id}/report.xlsx": Row(lambda c, h, w, own: c.get(
        f"{API}/reports/monthly/{report(w, own)}/report.xlsx", headers=h), (A.report_read,)),
    "GET /api/v1/reports/monthly/{report_id}/coverage.png": Row(lambda c, h, w, own: c.get(
        f"{API}/reports/monthly/{report(w, own)}/coverage.png", headers=h), (A.report_read,)),
    # Prevention activities (宣传教育, issue 18): a county's own types reach its area only.
    "GET /api/v1/activity-types": Row(lambda c, h, w, own: listed(activity_type(w, own), c.get(
        f"{API}/activity-types", headers=h), key="code"), (A.activity_read,)),
    "POST /api/v1/activity-types": Row(lambda c, h, w, own: c.post(f"{API}/activity-types", headers=h, json={
        "code": f"matrix_{m.serial()}", "name_zh": "矩阵活动", "name_en": "Matrix", "unit_id": m.county(w, own).id}),
        (A.checklist_manage,), caller=county_caller),
    "POST /api/v1/activities": probe("activity.record"),
    "GET /api/v1/activities": Row(lambda c, h, w, own: listed(m.activity(w, own), c.get(
        f"{API}/activities", headers=h)), (A.activity_read,)),
    "GET /api/v1/activities/{activity_id}": probe("activity.read"),
    "GET /api/v1/prevention/coverage": Row(lambda c, h, w, own: c.get(
        f"{API}/prevention/coverage", params={"unit_id": m.unit_id(w, own)}, headers=h), (A.activity_read,)),
    "GET /api/v1/prevention/without-activity": Row(lambda c, h, w, own: c.get(
        f"{API}/prevention/without-activity", params={"unit_id": m.unit_id(w, own), "kind": "village"}, headers=h),
        (A.activity_read,)),
    # Awareness surveys (知晓率, issue 18): rounds at the schools of the caller's area; questionnaire versions
    # are national or published at a county (nothing foreign to try in one county's tree).
    "GET /api/v1/awareness/questionnaires": Row(lambda c, h, w, own: c.get(
        f"{API}/awareness/questionnaires", headers=h), (A.survey_read,), foreign=False),
    "GET /api/v1/awareness/questionnaires/{questionnaire_id}": Row(lambda c, h, w, own: c.get(
        f"{API}/awareness/questionnaires/{m.national_questionnaire(w)}", headers=h), (A.survey_read,), foreign=False),
    "POST /api/v1/awareness/questionnaires": Row(lambda c, h, w, own: (m.education(w), c.post(
        f"{API}/awareness/questionnaires", headers=h, json=SURVEY_VERSION))[1], (A.survey_manage,), foreign=False,
        caller=county_caller),
    "POST /api/v1/awareness/rounds": probe("survey.manage"),
    "GET /api/v1/awareness/rounds": Row(lambda c, h, w, own: listed(m.survey_round(c, w, own), c.get(
        f"{API}/awareness/rounds", headers=h)), (A.survey_read,)),
    "GET /api/v1/awareness/rounds/{round_id}": Row(lambda c, h, w, own: c.get(
        f"{API}/awareness/rounds/{m.survey_round(c, w, own)}", headers=h), (A.survey_read,)),
    "POST /api/v1/awareness/rounds/{round_id}/close": Row(lambda c, h, w, own: (m.education(w), c.post(
        f"{API}/awareness/rounds/{m.survey_round(c, w, own)}/close", headers=h))[1], (A.survey_manage,),
        caller=m.town_caller),
    "GET /api/v1/awareness/rates": probe("survey.read"),
}


# Public operations: each check calls it without a bearer token and asserts what its own
# authorisation promises.


def _check_health(c: TestClient, w: World) -> None:
    assert c.get("/healthz").status_code == 200


def _check_ready(c: TestClient, w: World) -> None:
    resp = c.get("/readyz")
    assert resp.status_code == 200 and resp.json()["database"] == "ok", resp.text


def _check_login(c: TestClient, w: World) -> None:
    phone = m.user(w, w.own_user_id).phone
    assert c.post(f"{API}/auth/login", json={"phone": phone, "password": TEST_PASSWORD}).status_code == 200
    wrong = c.post(f"{API}/auth/login", json={"phone": phone, "password": "wrong-horse-battery"})
    assert wrong.status_code == 401, wrong.text


def _check_refresh(c: TestClient, w: World) -> None:
    token = sign_in(c, m.user(w, w.own_user_id)).refresh_token
    assert c.post(f"{API}/auth/refresh", json={"refresh_token": token}).status_code == 200
    for refused in (token, token[:-4] + "AAAA", "not-a-token"):  # spent, forged, garbage
        resp = c.post(f"{API}/auth/refresh", json={"refresh_token": refused})
        assert resp.status_code == 401, resp.text


def _check_logout(c: TestClient, w: World) -> None:
    token = sign_in(c, m.user(w, w.own_user_id)).refresh_token
    assert c.post(f"{API}/auth/logout", json={"refresh_token": token}).status_code == 204
    assert c.post(f"{API}/auth/refresh", json={"refresh_token": token}).status_code == 401


def _check_media_file(c: TestClient, w: World) -> None:
    client_uuid = ready_photo(c, w, True)
    link = c.get(f"{API}/media/{client_uuid}/link", headers=headers_for(m.s(w), m.volunteer(w, True)))
    assert link.status_code == 200, link.text
    url = link.json()["url"]
    assert c.get(url).status_code == 200
    head, token = url.rsplit("/", 1)
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert c.get(f"{head}/{forged}").status_code == 404
    clock.advance(timedelta(days=1))
    assert c.get(url).status_code == 410


def _check_calendar(c: TestClient, w: World) -> None:
    feed = c.get(f"{API}/schedules/feed-url", headers=headers_for(m.s(w), m.volunteer(w, True))).json()["url"]
    path = feed.split("://", 1)[1].split("/", 1)[1]
    assert c.get(f"/{path}").status_code == 200
    token = path.rsplit("/", 1)[1].removesuffix(".ics")
    assert c.get(f"{API}/calendar/{w.own_user_id}/{token[:-2]}xx.ics").status_code == 404
    assert c.get(f"{API}/calendar/{w.foreign_user_id}/{token}.ics").status_code == 404  # one officer's secret only


def _check_dashboard_config(c: TestClient, w: World) -> None:
    assert c.get(f"{API}/dashboard/config").status_code == 200


def _check_push_receipt(c: TestClient, w: World) -> None:
    from backend.notifications.providers import receipt_key

    body = {"statuses": [{"biTag": "1", "token": "no-such-token", "status": 0, "timestamp": 1}]}
    assert c.post(f"{API}/push-receipts/huawei/{receipt_key('huawei')}", json=body).status_code == 200
    assert c.post(f"{API}/push-receipts/huawei/{'0' * 40}", json=body).status_code == 404
    assert c.post(f"{API}/push-receipts/fcm/{receipt_key('fcm')}", json=body).status_code == 404


def _survey_code(c: TestClient, w: World) -> str:
    opener = make_user(m.s(w), w.town.town, Role.coordinator)
    resp = c.post(f"{API}/awareness/rounds", json={"institution_id": m.survey_school(w, True)},
                  headers=headers_for(m.s(w), opener))
    return str(resp.json()["code"])


def _check_survey_form(c: TestClient, w: World) -> None:
    code = _survey_code(c, w)
    assert c.get(f"{API}/awareness/answer/{code}").status_code == 200
    assert c.get(f"{API}/awareness/answer/{code[:-2]}{'00' if not code.endswith('00') else '11'}").status_code == 404


def _check_survey_answer(c: TestClient, w: World) -> None:
    code = _survey_code(c, w)
    sheet = {"response_uuid": "3f2b5a8e-1c4d-4e6f-8a9b-0c1d2e3f4a5b", "answers": {"q1": ["a"]}}
    assert c.post(f"{API}/awareness/answer/{code}", json=sheet).status_code == 201
    forged = f"{code[:-2]}{'00' if not code.endswith('00') else '11'}"
    assert c.post(f"{API}/awareness/answer/{forged}", json=sheet).status_code == 404


PUBLIC: dict[str, Callable[[TestClient, World], None]] = {
    "GET /healthz": _check_health,
    "GET /readyz": _check_ready,
    "POST /api/v1/auth/login": _check_login,
    "POST /api/v1/auth/refresh": _check_refresh,
    "POST /api/v1/auth/logout": _check_logout,
    "GET /api/v1/media-files/{token}": _check_media_file,
    "GET /api/v1/calendar/{user_id}/{token}.ics": _check_calendar,
    "GET /api/v1/dashboard/config": _check_dashboard_config,
    "GET /api/v1/awareness/answer/{code}": _check_survey_form,
    "POST /api/v1/awareness/answer/{code}": _check_survey_answer,
    "POST /api/v1/push-receipts/{channel}/{key}": _check_push_receipt,
}

# Rows that fail today because of a bug in a module being edited elsewhere; each names the bug.
KNOWN_FAILURES: dict[str, str] = {}


@pytest.fixture(scope="module")
def matrix_app() -> FastAPI:
    """One app for the whole table (building routes is most of what a fresh app per row costs)."""
    return create_app()


@pytest.fixture
def client(matrix_app: FastAPI, database_url: str) -> Iterator[TestClient]:
    with TestClient(matrix_app) as c:
        yield c


def _operations(app: FastAPI) -> dict[str, bool]:
    """Every operation the app serves, as "METHOD path", and whether it asks for a bearer token."""
    return {f"{method.upper()} {path}": bool(op.get("security"))
            for path, ops in app.openapi()["paths"].items() for method, op in ops.items()}


def test_every_operation_has_a_row(matrix_app: FastAPI) -> None:
    served = _operations(matrix_app)
    missing = sorted(set(served) - set(ROWS) - set(PUBLIC))
    assert not missing, f"operations without a row in tests/test_endpoint_matrix.py: {missing}"
    gone = sorted((set(ROWS) | set(PUBLIC)) - set(served))
    assert not gone, f"rows for operations the app no longer serves: {gone}"
    assert not set(ROWS) & set(PUBLIC)
    assert sorted(op for op, token in served.items() if not token) == sorted(PUBLIC)
    assert set(KNOWN_FAILURES) <= set(ROWS) | set(PUBLIC)
    nobody = sorted(op for op, row in ROWS.items() if not any(set(row.guard) <= PERMISSIONS[r] for r in Role))
    assert not nobody, f"rows no role may call (their success is never tried): {nobody}"


def _world(session: Session) -> World:
    town = make_town(session)
    own_user = make_user(session, town.grids[0][2], Role.volunteer)
    foreign_user = make_user(session, town.villages[1], Role.volunteer)
    return World(town, own_user.id or 0, foreign_user.id or 0, session=session, caller_id=own_user.id or 0)


def expected(row: Row, role: Role, own: bool, backend: str, assigned: bool = False) -> str:
    """"2xx" or the status the role must get (`assigned`: the row's children are taken on by the caller)."""
    missing = [a for a in row.guard if a not in PERMISSIONS[role]]
    if missing:
        return "404" if missing[0] in HIDDEN_ACTIONS else "403"
    if not own:
        return str(row.foreign_status)
    if role is Role.helper and row.by_assignment and not assigned:
        return "404"
    if role in row.refused:
        return "403"
    if row.postgis_only and backend == "spatialite":
        return "501"
    return "2xx"


def _params(table: dict[str, Any]) -> list[Any]:
    return [pytest.param(op, id=op, marks=[pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[op])]
                         if op in KNOWN_FAILURES else []) for op in sorted(table)]


@pytest.mark.usefixtures("media_root")  # photos and reports go to this test's own directory
@pytest.mark.parametrize("op", _params(ROWS))
def test_endpoint_role_jurisdiction(client: TestClient, session: Session, backend_name: str, op: str) -> None:
    row = ROWS[op]
    base = _world(session)
    failures: list[str] = []

    def check(who: str, resp: Response, want: str) -> None:
        got = str(resp.status_code)
        if got != want and not (want == "2xx" and resp.is_success):
            textual = resp.headers.get("content-type", "").startswith(("application/json", "application/problem",
                                                                      "text/"))
            failures.append(f"{who}: {got}, expected {want}: {resp.text[:300] if textual else '(binary)'}")

    check("no token", row.call(client, {}, base, True), "401")
    for role in Role:
        for assigned in (False, True) if role is Role.helper else (False,):
            caller: User = make_user(session, row.caller(base.town), role)
            world = replace(base, caller_id=caller.id or 0, assigned=assigned)
            headers = headers_for(session, caller)
            axis = (" assigned" if assigned else " not-assigned") if role is Role.helper else ""
            for own in (True, False) if row.foreign else (True,):
                with received_by(client, headers) as answers:
                    resp = row.call(client, headers, world, own)
                who = f"{role.value}{axis} {'own' if own else 'foreign'}"
                check(who, resp, expected(row, role, own, backend_name, assigned))
                if role is Role.helper and not assigned:
                    failures += [f"{who}: the answer carries {leak}" for leak in children_in(session, answers)]
    assert not failures, f"{op}:\n" + "\n".join(failures)


@contextlib.contextmanager
def received_by(client: TestClient, headers: dict[str, str]) -> Iterator[list[Response]]:
    """Every answer the server sends to requests made with these headers while the block runs (a row
    may make records through other users' requests first; those answers are theirs)."""
    answers: list[Response] = []
    token = headers.get("Authorization")

    def keep(resp: Response) -> None:
        if token is not None and resp.request.headers.get("Authorization") == token:
            resp.read()
            answers.append(resp)

    hooks = client.event_hooks
    client.event_hooks = {**hooks, "response": [*hooks.get("response", []), keep]}
    try:
        yield answers
    finally:
        client.event_hooks = hooks


def children_in(session: Session, answers: list[Response]) -> list[str]:
    """Identifiers and names of the town's children, guardians, households and visits that these
    answers carry (none may reach a helper that has taken on no child)."""
    session.expire_all()
    marks: dict[str, str] = {}
    for uid, name in session.execute(select(col(Person.uuid), col(Person.name))).all():
        marks[str(uid)] = f"person {uid}"
        marks[name] = f"the name of person {uid}"
    for uid, address in session.execute(select(col(Household.uuid), col(Household.address))).all():
        marks[str(uid)] = f"household {uid}"
        marks[address] = f"the address of household {uid}"
    for (uid,) in session.execute(select(col(Visit.client_uuid))).all():
        marks[str(uid)] = f"visit {uid}"
    found: list[str] = []
    for resp in answers:
        kind = resp.headers.get("content-type", "")
        if not kind.startswith(("application/json", "application/problem", "application/geo+json", "text/")):
            continue
        body = resp.text
        with contextlib.suppress(ValueError):
            body += json.dumps(resp.json(), ensure_ascii=False)
        found += [f"{what} ({resp.request.method} {resp.request.url.path})" for mark, what in marks.items()
                  if mark in body]
    return found


@pytest.mark.usefixtures("media_root")
@pytest.mark.parametrize("op", _params(PUBLIC))
def test_public_endpoint_keeps_its_own_authorisation(client: TestClient, session: Session, op: str) -> None:
    PUBLIC[op](client, _world(session))
