"""A town with a police station, its users, and the records a police case may link to."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, col

from backend.accounts.models import Agency, User
from backend.accounts.permissions import Role
from backend.cases.models import Case
from backend.core import clock
from backend.demo.town import DemoTown
from backend.orgunits import service as orgunits
from backend.orgunits.models import OrgLevel, OrgUnit
from backend.referrals.models import Referral
from backend.registry.models import RiskPerson, RiskPersonCategory
from backend.venues.models import Venue
from tests.factories import make_town, make_user
from tests.notifications.factories import headers_for
from tests.registry.factories import fine_answers, push, seed_household, visit_item
from tests.venues import factories as venue_factories

API = "/api/v1"
# Sunday 29 November 2026, 23:30 China time: the last half hour of ISO week 2026-W48.
SUNDAY_NIGHT = datetime(2026, 11, 29, 15, 30, tzinfo=UTC)


@dataclass
class Station:
    """The test town (its 派出所), its county, and a signed-in user per role, made on first use (headers
    are issued by the clock, so they follow a moved clock when asked for again)."""

    client: TestClient
    session: Session
    town: DemoTown = field(init=False)
    users: dict[str, User] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.town = make_town(self.session)

    def user(self, key: str, unit: OrgUnit, role: Role, agency: Agency | None = None) -> User:
        if key not in self.users:
            self.users[key] = make_user(self.session, unit, role, agency=agency)
        return self.users[key]

    def headers(self, key: str) -> dict[str, str]:
        makers = {
            "police": (self.town.town, Role.police, Agency.police),
            "county_police": (self.town.county, Role.police, Agency.police),
            "coordinator": (self.town.town, Role.coordinator, Agency.government),
            "county_coordinator": (self.town.county, Role.coordinator, Agency.government),
            "volunteer": (self.town.villages[0], Role.volunteer, Agency.womens_federation),
            "market": (self.town.town, Role.market_officer, Agency.market_supervision),
            "helper": (self.town.town, Role.helper, Agency.womens_federation),
            "agency_staff": (self.town.town, Role.agency_staff, Agency.civil_affairs),
        }
        unit, role, agency = makers[key]
        return headers_for(self.session, self.user(key, unit, role, agency))

    def other_town(self, code: str = "999901") -> OrgUnit:
        """Another town of the same county (made on first use)."""
        found = self.session.execute(select(OrgUnit).where(col(OrgUnit.code) == code)).scalar_one_or_none()
        if found is not None:
            return found
        unit = orgunits.create_unit(self.session, code=code, name=f"邻镇{code}", level=OrgLevel.town,
                                    parent=self.town.county)
        self.session.commit()
        return unit

    def police_of(self, unit: OrgUnit) -> dict[str, str]:
        return headers_for(self.session, self.user(f"police-{unit.id}", unit, Role.police, Agency.police))

    # ------------------------------------------------------------ records to link

    def referred_case(self) -> tuple[int, int]:
        """A mandatory report from a visit in village 0 and the case it opened: (referral id, case id)."""
        from tests.factories import SignedIn

        volunteer = SignedIn(self.user("volunteer", self.town.villages[0], Role.volunteer, Agency.womens_federation),
                             self.headers("volunteer"), "")
        home, _kids = seed_household(self.client, volunteer)
        answers = {**fine_answers(), "look1": {"value": "yes"}}
        body = push(self.client, volunteer, [visit_item(home["uuid"], answers=answers)])
        assert body["results"][0]["status"] == "created", body
        referral_id = self.session.execute(select(col(Referral.id)).where(
            col(Referral.household_id) == home["id"])).scalar_one()
        case_id = self.session.execute(select(col(Case.id)).where(col(Case.source_id) == referral_id,
                                                                  col(Case.opened_from) == "referral")).scalar_one()
        return int(referral_id), int(case_id)

    def case_by_hand(self) -> int:
        """A case a coordinator opened (no referral: police do not see it)."""
        from tests.factories import SignedIn

        volunteer = SignedIn(self.user("volunteer", self.town.villages[0], Role.volunteer, Agency.womens_federation),
                             self.headers("volunteer"), "")
        _home, kids = seed_household(self.client, volunteer)
        resp = self.client.post(f"{API}/cases", json={"child_id": kids[0]["id"], "reason": "专班研判"},
                                headers=self.headers("coordinator"))
        assert resp.status_code == 201, resp.text
        return int(resp.json()["id"])

    def risk_person(self, *, sealed: bool = False) -> int:
        row = RiskPerson(org_unit_id=self.town.grids[0][0].id or 0, name="某甲", sealed=sealed,
                         categories=[RiskPersonCategory.community_correction.value])
        self.session.add(row)
        self.session.commit()
        return row.id or 0

    def venue(self, village: int = 0) -> Venue:
        return venue_factories.make_venue(self.session, self.town, village=village)


def case_body(number: str = "A2026001", **extra: Any) -> dict[str, Any]:
    return {"case_number": number, "category": "child_molestation", "summary": "某宾馆内猥亵儿童", "victims": 1,
            **extra}


def register(st: Station, who: str = "police", status: int = 201, **body: Any) -> dict[str, Any]:
    resp = st.client.post(f"{API}/police-cases", json=case_body(**body), headers=st.headers(who))
    assert resp.status_code == status, resp.text
    out: dict[str, Any] = resp.json()
    return out


def china_today() -> Any:
    return clock.now().astimezone(clock.SHANGHAI).date()
