"""RFC 9457's own members keep their meaning in every problem: `status` is the HTTP code a phone reads
as a number, so an error that would carry a record's state under that name (a case `open`, an
assignment `ended`) cannot even be raised."""

from __future__ import annotations

import pytest

from backend.core.errors import RESERVED_MEMBERS, Conflict


@pytest.mark.parametrize("member", sorted(RESERVED_MEMBERS))
def test_an_extension_may_not_take_a_problem_member_name(member: str) -> None:
    with pytest.raises(TypeError, match=member):
        Conflict("状态不允许", "Not allowed", **{member: "open"})


def test_a_records_state_travels_as_current_status_beside_the_http_status() -> None:
    problem = Conflict("状态不允许", "Not allowed", current_status="open", allowed=["reopen"]).to_problem("en")
    assert problem["status"] == 409 and problem["current_status"] == "open" and problem["allowed"] == ["reopen"]
