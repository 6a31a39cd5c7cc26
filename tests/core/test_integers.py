"""The quick look at a push for integers no column holds (backend/core/integers.py) never misses one:
for any JSON value it names exactly the paths a plain walk over every integer names."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from backend.core import integers


def _every_out_of_range(value: Any, path: str = "") -> list[str]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [] if integers.SMALLEST <= value <= integers.LARGEST else [path]
    found: list[str] = []
    if isinstance(value, dict):
        for key, member in value.items():
            found += _every_out_of_range(member, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for n, member in enumerate(value):
            found += _every_out_of_range(member, f"{path}.{n}" if path else str(n))
    return found


_numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from([2**31, -(2**31) - 1, 2**31 - 1, -(2**31), 10**9, 10**10, -(10**10), 2**63, 2**64]),
    st.floats(allow_nan=False, allow_infinity=False),
)
_scalars = st.one_of(st.none(), st.booleans(), _numbers, st.text(st.sampled_from("0123456789:,[-\"x ")))
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text("ab:,0123456789", max_size=6), inner, max_size=4),
    max_leaves=25,
)


@settings(max_examples=600, deadline=None)
@given(_json)
def test_every_integer_out_of_range_is_named(value: Any) -> None:
    assert integers.find_out_of_range(value) == _every_out_of_range(value)


def test_a_push_of_plain_visits_needs_no_walk() -> None:
    """Floats with many digits, timestamps and numbers in text are not mistaken for long integers."""
    batch = [{"gps": {"lon": 117.12345678901234, "lat": -31.123456789012345}, "note": "电话13800138000",
              "device_time": "2026-11-20T09:30:00+08:00", "count": 2147483647}]
    assert integers.find_out_of_range(batch) == []
    assert integers.find_out_of_range([{"n": 2147483648}]) == ["0.n"]
    assert integers.find_out_of_range([{"n": -2147483649}]) == ["0.n"]
