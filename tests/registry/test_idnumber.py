"""Resident ID numbers (GB 11643) and their encryption at rest."""

from __future__ import annotations

from datetime import date

import pytest

from backend.core import crypto
from backend.core.config import Settings
from backend.core.secrets import check_production
from backend.registry import idnumber


def test_valid_number_gives_birth_date_and_sex() -> None:
    value = idnumber.make("990101", date(2014, 5, 6), 123)
    parsed = idnumber.parse(value)
    assert parsed.birth_date == date(2014, 5, 6)
    assert parsed.sex is idnumber.Sex.male
    assert parsed.region == "990101"
    assert idnumber.parse(idnumber.make("990101", date(2014, 5, 6), 124)).sex is idnumber.Sex.female


def test_known_real_format_check_character_including_x() -> None:
    # 11010519491231002X is the standard published example with check character X.
    assert idnumber.check_character("11010519491231002") == "X"
    assert idnumber.parse("11010519491231002x").value.endswith("X")


def test_one_mistyped_digit_fails_the_checksum_with_an_actionable_message() -> None:
    value = idnumber.make("990101", date(2014, 5, 6), 123)
    wrong = value[:5] + str((int(value[5]) + 1) % 10) + value[6:]
    with pytest.raises(idnumber.InvalidIdNumber) as err:
        idnumber.parse(wrong)
    assert "校验位" in (err.value.detail_zh or "")


@pytest.mark.parametrize("raw", ["12345", "99010120140230123X", "9901012014050612A4", ""])
def test_malformed_numbers_and_impossible_dates_are_refused(raw: str) -> None:
    with pytest.raises(idnumber.InvalidIdNumber):
        idnumber.parse(raw)


def test_recorded_sex_or_birth_date_must_match_the_number() -> None:
    value = idnumber.make("990101", date(2014, 5, 6), 123)  # male
    with pytest.raises(idnumber.InvalidIdNumber) as err:
        idnumber.parse_for_person(value, today=date(2026, 1, 1), sex=idnumber.Sex.female)
    assert err.value.extensions["field"] == "sex"
    with pytest.raises(idnumber.InvalidIdNumber):
        idnumber.parse_for_person(value, today=date(2026, 1, 1), birth_date=date(2014, 5, 7))


def test_a_child_must_be_under_18_on_the_day_of_the_record() -> None:
    value = idnumber.make("990101", date(2008, 5, 6), 123)
    assert idnumber.parse_for_person(value, today=date(2026, 5, 5), minor=True).age_on(date(2026, 5, 5)) == 17
    with pytest.raises(idnumber.InvalidIdNumber) as err:
        idnumber.parse_for_person(value, today=date(2026, 5, 6), minor=True)
    assert "18" in (err.value.detail_zh or "")


def test_birth_in_the_future_is_refused() -> None:
    with pytest.raises(idnumber.InvalidIdNumber):
        idnumber.parse(idnumber.make("990101", date(2030, 1, 1), 1), today=date(2026, 1, 1))


def test_mask_keeps_the_region_only() -> None:
    # Not a digit of the birth date or the sequence: with a birth date beside it, first 6 + last 4
    # left only the date hidden (tests/registry/test_id_reconstruction.py).
    assert idnumber.mask("11010519491231002X") == "110105************"
    assert idnumber.is_masked("110105************") and idnumber.is_masked("110105********002X")
    assert not idnumber.is_masked("11010519491231002X")


def test_encryption_round_trips_with_key_id_and_random_nonce() -> None:
    a, b = crypto.encrypt("11010519491231002X"), crypto.encrypt("11010519491231002X")
    assert a.key_id == "dev-1" and a.token.startswith("dev-1:")
    assert a.token != b.token  # fresh nonce each time
    assert "11010519491231002X" not in a.token
    assert crypto.decrypt(a.token) == "11010519491231002X"


def test_blind_index_is_stable_and_case_insensitive_but_keyed() -> None:
    assert crypto.blind_index("11010519491231002x") == crypto.blind_index("11010519491231002X")
    assert crypto.blind_index("11010519491231002X") != crypto.blind_index("110105194912310039")


def test_old_key_still_decrypts_after_rotation(monkeypatch: pytest.MonkeyPatch) -> None:
    from backend.core.config import get_settings

    old = crypto.encrypt("11010519491231002X").token
    monkeypatch.setenv("HULEI_ID_NUMBER_KEYS", get_settings().id_number_keys + ",k2026:" + "A" * 43 + "=")
    monkeypatch.setenv("HULEI_ID_NUMBER_ACTIVE_KEY", "k2026")
    get_settings.cache_clear()
    try:
        new = crypto.encrypt("11010519491231002X")
        assert new.key_id == "k2026"
        assert crypto.decrypt(old) == crypto.decrypt(new.token) == "11010519491231002X"
    finally:
        get_settings.cache_clear()


def test_production_refuses_the_development_keys() -> None:
    # Weak keys of every kind (all-zero, template, short) are tried in tests/core/test_secrets.py.
    with pytest.raises(RuntimeError, match=r"HULEI_ID_NUMBER_KEYS \(dev-1\)") as refused:
        check_production(Settings(production=True))
    assert "HULEI_ID_NUMBER_INDEX_KEY" in str(refused.value)
    check_production(
        Settings(
            production=True,
            jwt_secret="q8Vd3nR-xZ7cLw0pTfY2hK9mJbA6sUeG4oN1iQyHvX5rWzC_Dk8tPaLgEu3FjMhB",
            id_number_keys="k1:nzocflstT2CBo8XnCStNb44aPF5wstT2qBk7XX8OLEo=",
            id_number_active_key="k1",
            id_number_index_key="Hn4c_Zp9QeX2wLrT7vK0bYsJ6dG1mUaF8iO3xRtEyWq5-NkCjVhB2gPzLsDfAe7M",
        )
    )
