"""The permission matrix: which role may do which action. The only place it is written down.

Jurisdiction is separate and uniform: a user acts only inside the subtree of their own org unit,
and a record outside it answers 404 (see backend.accounts.deps).
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    volunteer = "volunteer"  # 巾帼志愿者 / 执委妈妈
    helper = "helper"  # 帮扶人
    grid_worker = "grid_worker"  # 网格员
    market_officer = "market_officer"  # 行业执法人员 (市场监管, 文旅, 教育, 综合执法, 卫健; issue 18)
    police = "police"  # 民警
    coordinator = "coordinator"  # 乡镇/县 专班协调人
    admin = "admin"  # 系统管理员
    # 成员单位经办人: staff of a member unit (司法所, 民政办, 学校, 卫生院 ...) who provide the services
    # of cases and answer referrals addressed to their unit, and file mandatory reports (issue 16).
    agency_staff = "agency_staff"


class Action(StrEnum):
    # Foundation: the org tree, users, the audit log, phones.
    orgunit_read = "orgunit.read"
    user_read = "user.read"
    user_manage = "user.manage"
    audit_read = "audit.read"
    device_register = "device.register"
    # Venues, inspections, problems and weekly joint-enforcement plans.
    venue_read = "venue.read"
    venue_write = "venue.write"
    inspection_read = "inspection.read"
    inspection_create = "inspection.create"
    problem_update = "problem.update"
    problem_verify = "problem.verify"
    schedule_read = "schedule.read"
    schedule_generate = "schedule.generate"
    schedule_publish = "schedule.publish"
    # Photos: upload, derivatives through signed links, originals (audited).
    media_upload = "media.upload"
    media_read = "media.read"
    media_original = "media.original"
    # Registry (households, children, 附件2 risk persons), visits, referrals, ledgers.
    household_read = "household.read"
    household_write = "household.write"
    child_read = "child.read"
    child_write = "child.write"
    child_reveal_id = "child.reveal_id"
    risk_person_read = "risk_person.read"
    risk_person_write = "risk_person.write"
    # Record a control check-in (管控) on a 附件2 person.
    risk_person_control = "risk_person.control"
    # Open one sealed record (犯罪记录封存: a person who was a minor at the time) with a stated reason.
    sealed_open = "sealed.open"
    visit_create = "visit.create"
    visit_read = "visit.read"
    referral_read = "referral.read"
    referral_manage = "referral.manage"
    ledger_export = "ledger.export"
    ledger_import = "ledger.import"
    risk_override = "risk.override"
    checklist_manage = "checklist.manage"
    # Coverage maps, campaigns, the dashboard and monthly reports.
    coverage_read = "coverage.read"
    coverage_households = "coverage.households"
    campaign_manage = "campaign.manage"
    report_read = "report.read"
    report_generate = "report.generate"
    # Notifications, "2112" incidents, helpers and their assignments.
    notification_read = "notification.read"
    # Where notifications of the jurisdiction got to, and how each push channel and the SMS fallback are
    # doing (issue 19): delivery status, never a notification's text or a phone number.
    notification_delivery_read = "notification.delivery.read"
    notification_health_read = "notification.health.read"
    incident_read = "incident.read"
    incident_create = "incident.create"
    incident_handoff = "incident.handoff"
    incident_close = "incident.close"
    helper_read = "helper.read"
    helper_manage = "helper.manage"
    assignment_read = "assignment.read"
    assignment_confirm = "assignment.confirm"
    assignment_answer = "assignment.answer"
    # Cases (个案, issue 16): a child at risk or a victim, open -> active -> closed.
    case_read = "case.read"
    case_manage = "case.manage"
    # Service plans of cases and referrals between units (issue 16): read, plan (coordinators), and
    # act on what is addressed to one's own unit (or, for a helper, the services of its own cases).
    service_read = "service.read"
    service_manage = "service.manage"
    service_handle = "service.handle"
    # File a mandatory report (强制报告) directly, from any unit with the duty to report (issue 16).
    mandatory_report_file = "mandatory_report.file"
    # The police case register (立案), its weekly report, and one-case-one-review (一案一倒查).
    police_case_read = "police_case.read"
    police_case_manage = "police_case.manage"
    case_review_manage = "case_review.manage"
    # Review of field work (审核, issue 17): read the queue and decisions; decide on visits and inspections
    # and set a town's counting rule.
    review_read = "review.read"
    review_manage = "review.manage"
    # Institutions in close contact with minors (学校, 幼儿园, 校外培训机构, 旅馆, 网吧, 卫生院 ...): the
    # register that prevention activities, awareness surveys and staff checks hang on (issue 18).
    institution_read = "institution.read"
    institution_write = "institution.write"
    # Prevention and education (宣传教育): record an activity; read activities and the places without any.
    activity_record = "activity.record"
    activity_read = "activity.read"
    # Awareness surveys (知晓率): publish questionnaire versions, open survey rounds; read the rates.
    survey_manage = "survey.manage"
    survey_read = "survey.read"
    # Staff background checks (从业查询): an institution's staff and their checks, readable only by the
    # police and the institution's supervising agency; `staff_check` records a check's result (police);
    # `staff_overview` is counts only (checked, never checked, due), never a name or a result.
    staff_read = "staff.read"
    staff_manage = "staff.manage"
    staff_check = "staff.check"
    staff_overview = "staff.overview"
    # Supervision of any unit (督办): raise a problem on a unit, institution or venue (明察暗访, case
    # review), mark it 挂牌督办, verify and close it; the responsible unit reports its rectification.
    supervision_read = "supervision.read"
    supervision_manage = "supervision.manage"
    supervision_rectify = "supervision.rectify"
    # Typical-case notices (典型案例通报): publish to units; read and acknowledge those addressed to one's unit.
    notice_publish = "notice.publish"
    notice_read = "notice.read"


# Actions whose very existence is sensitive: a role without them gets 404, exactly as if the
# record did not exist, rather than a 403 that confirms it does (children, referrals, 附件2, 2112).
HIDDEN_ACTIONS: frozenset[Action] = frozenset({
    Action.media_original, Action.household_read, Action.child_read, Action.child_reveal_id,
    Action.risk_person_read, Action.risk_person_write, Action.sealed_open, Action.visit_read,
    Action.referral_read, Action.referral_manage, Action.incident_read, Action.incident_handoff,
    Action.incident_close, Action.case_read, Action.case_manage, Action.service_read, Action.service_manage,
    Action.service_handle, Action.police_case_read, Action.police_case_manage, Action.case_review_manage,
    Action.staff_read, Action.staff_manage, Action.staff_check,
})

A = Action

# The matrix. Each role's list reads top to bottom in the order of Action above.
PERMISSIONS: dict[Role, frozenset[Action]] = {
    # Door-knocking: households, children and visits in their own area; photos; the coverage of their area.
    Role.volunteer: frozenset({
        A.orgunit_read, A.device_register, A.media_upload, A.media_read, A.household_read, A.household_write,
        A.child_read, A.child_write, A.visit_create, A.visit_read, A.coverage_read, A.coverage_households,
        A.notification_read, A.mandatory_report_file, A.institution_read, A.activity_record, A.activity_read,
    }),
    # One-to-one help: the children assigned, follow-up visits, and answering proposals.
    Role.helper: frozenset({
        A.orgunit_read, A.device_register, A.media_upload, A.media_read, A.household_read, A.child_read,
        A.visit_create, A.visit_read, A.coverage_read, A.notification_read, A.assignment_read,
        A.assignment_answer, A.case_read, A.service_read, A.service_handle, A.mandatory_report_file,
    }),
    # As volunteers, plus reading the venues of their grid.
    Role.grid_worker: frozenset({
        A.orgunit_read, A.device_register, A.venue_read, A.media_upload, A.media_read, A.household_read,
        A.household_write, A.child_read, A.child_write, A.visit_create, A.visit_read, A.coverage_read,
        A.coverage_households, A.notification_read, A.mandatory_report_file, A.institution_read,
        A.activity_record, A.activity_read,
    }),
    # Venues, inspections and problems; never children's records.
    Role.market_officer: frozenset({
        A.orgunit_read, A.device_register, A.venue_read, A.venue_write, A.inspection_read, A.inspection_create,
        A.problem_update, A.problem_verify, A.schedule_read, A.media_upload, A.media_read, A.notification_read,
        A.mandatory_report_file, A.institution_read, A.activity_record, A.activity_read, A.supervision_read,
        A.notice_read,
    }),
    # Venues and inspections; children (with full ID numbers), 附件2, referrals, ledgers; photo originals;
    # the only role that opens a sealed record (with a reason, audited).
    Role.police: frozenset({
        A.orgunit_read, A.device_register, A.venue_read, A.venue_write, A.inspection_read, A.inspection_create,
        A.problem_update, A.problem_verify, A.schedule_read, A.media_upload, A.media_read, A.media_original,
        A.household_read, A.child_read, A.child_reveal_id, A.risk_person_read, A.risk_person_write,
        A.risk_person_control, A.sealed_open, A.visit_read, A.referral_read, A.referral_manage, A.ledger_export,
        A.ledger_import,
        A.coverage_read, A.report_read, A.notification_read, A.case_read, A.service_read, A.service_handle,
        A.mandatory_report_file, A.police_case_read, A.police_case_manage, A.case_review_manage,
        A.institution_read, A.activity_record, A.activity_read, A.staff_read, A.staff_manage, A.staff_check,
        A.staff_overview, A.supervision_read, A.supervision_rectify, A.notice_read,
    }),
    # Everything in their jurisdiction except verifying problems (an officer's re-inspection does that).
    Role.coordinator: frozenset({
        A.orgunit_read, A.user_read, A.user_manage, A.device_register, A.venue_read, A.venue_write,
        A.inspection_read, A.problem_update, A.schedule_read, A.schedule_generate, A.schedule_publish,
        A.media_upload, A.media_read, A.household_read, A.household_write, A.child_read, A.child_write,
        A.child_reveal_id, A.risk_person_read, A.risk_person_write, A.visit_create, A.visit_read,
        A.referral_read, A.referral_manage, A.ledger_export, A.ledger_import, A.risk_override,
        A.checklist_manage, A.coverage_read, A.coverage_households, A.campaign_manage, A.report_read,
        A.report_generate, A.notification_read, A.notification_delivery_read, A.notification_health_read,
        A.incident_read, A.incident_create, A.incident_handoff,
        A.incident_close, A.helper_read, A.helper_manage, A.assignment_read, A.assignment_confirm,
        A.case_read, A.case_manage, A.service_read, A.service_manage, A.service_handle, A.mandatory_report_file,
        A.police_case_read, A.case_review_manage, A.review_read, A.review_manage, A.institution_read,
        A.institution_write, A.activity_record, A.activity_read, A.survey_manage, A.survey_read, A.staff_overview,
        A.supervision_read, A.supervision_manage, A.supervision_rectify, A.notice_publish, A.notice_read,
    }),
    # Users, the audit log and read-only overviews; no personal records of children.
    Role.admin: frozenset({
        A.orgunit_read, A.user_read, A.user_manage, A.audit_read, A.device_register, A.venue_read,
        A.inspection_read, A.schedule_read, A.coverage_read, A.campaign_manage, A.report_read,
        A.notification_read, A.notification_delivery_read, A.notification_health_read, A.institution_read,
        A.activity_read, A.survey_read, A.staff_overview, A.supervision_read, A.notice_read,
    }),
    # Member-unit staff: the services and referrals addressed to their own unit (the shared fields
    # only), and filing mandatory reports; never a child's record or a case itself.
    Role.agency_staff: frozenset({
        A.orgunit_read, A.device_register, A.notification_read, A.service_read, A.service_handle,
        A.mandatory_report_file, A.institution_read, A.activity_record, A.activity_read, A.survey_manage,
        A.survey_read, A.staff_read, A.staff_manage, A.staff_overview, A.supervision_read, A.supervision_rectify,
        A.notice_read,
    }),
}

# Roles whose access to children's records reaches only the children assigned to the user: a helper
# sees a child with an accepted assignment to them, that child's household and the household's visits,
# inside the jurisdiction, and nothing else of children (backend/accounts/scope.py). A right another
# role of the same user grants (a helper who is also a volunteer) keeps that role's area-wide reach.
ASSIGNED_ONLY: frozenset[Role] = frozenset({Role.helper})

# Roles whose case.read reaches only the cases the law gives them: police see the cases of their
# jurisdiction that a referral (强制报告) opened or joined (backend/accounts/scope.py, Case).
REFERRED_ONLY: frozenset[Role] = frozenset({Role.police})

# Roles whose service.read/service.handle reach only what is addressed to their own unit (the pair
# User.org_unit_id + User.agency): member-unit staff see the services their unit provides and the
# referrals to or from it, wherever the case is (backend/accounts/scope.py, CaseService, AgencyReferral).
ADDRESSED_ONLY: frozenset[Role] = frozenset({Role.agency_staff})

# Roles through which a user acts for its unit (成员单位: the org unit and the agency): what is addressed
# to the unit (a service it provides, a referral to it, their reminders) reaches its users holding one
# of these. A helper acts for itself, whatever body it comes from: it reaches its own children's cases
# only, never what is addressed to its agency.
ACTS_FOR_UNIT: frozenset[Role] = frozenset({Role.agency_staff, Role.police, Role.coordinator})

# Who may give which role to whom (and so who may manage whom) is the grant table in
# backend/accounts/grants.py.


def allowed(roles: frozenset[Role] | set[Role], action: Action) -> bool:
    """Whether any of the roles grants the action."""
    return any(action in PERMISSIONS[r] for r in roles)

