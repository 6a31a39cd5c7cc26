"""The one normaliser of identifiers (backend/core/identifiers.py), property by property."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.core import identifiers
from backend.registry import idnumber
from backend.venues import credit_code

SETTINGS = settings(max_examples=200, deadline=None, database=None)


@SETTINGS
@given(st.text(max_size=40))
def test_folding_is_idempotent_and_leaves_no_whitespace(raw: str) -> None:
    once = identifiers.fold(raw)
    assert identifiers.fold(once) == once
    assert not any(ch.isspace() for ch in once)


@SETTINGS
@given(st.text(max_size=30))
def test_a_phone_number_is_ascii_digits_or_refused(raw: str) -> None:
    try:
        number = identifiers.phone(raw)
    except ValueError:
        return
    assert number.isascii() and number.isdigit()
    assert identifiers.phone(number) == number


@SETTINGS
@given(st.text(max_size=30))
def test_a_contact_never_keeps_digits_nfkc_does_not_fold(raw: str) -> None:
    try:
        value = identifiers.contact(raw)
    except identifiers.SpreadsheetNumber:
        # A number as a spreadsheet writes it (13800138000.0, 5.71889E+09) is refused, not kept.
        assert re.fullmatch(r"[0-9]+\.0+|[0-9](\.[0-9]+)?E[+-][0-9]{2}", identifiers.fold(raw))
        return
    except ValueError:
        assert identifiers.foreign_digits(unicodedata.normalize("NFKC", raw))
        return
    assert not identifiers.foreign_digits(value)
    assert identifiers.contact(value) == value


@pytest.mark.parametrize("raw", ["１１０１０５１９４９１２３１００２ｘ", " 110105 19491231 002x ",
                                 "１１０１０５\u300019491231002X", "𝟏𝟏𝟎𝟏𝟎𝟓𝟏𝟗𝟒𝟗𝟏𝟐𝟑𝟏𝟎𝟎𝟐X"])
def test_id_number_spellings_fold_to_one(raw: str) -> None:
    assert idnumber.parse(raw).value == "11010519491231002X"


@pytest.mark.parametrize("digits", ["٠١٢٣٤٥٦٧٨٩", "۰۱۲۳۴۵۶۷۸۹", "०१२३४५६७८९", "০১২৩৪৫৬৭৮৯", "๐๑๒๓๔๕๖๗๘๙"])
def test_digits_of_other_scripts_are_not_digits_of_an_identifier(digits: str) -> None:
    other = str.maketrans("0123456789", digits)
    with pytest.raises(idnumber.InvalidIdNumber):
        idnumber.parse("11010519491231002X".translate(other))
    with pytest.raises(ValueError):
        identifiers.mobile("13800138000".translate(other))
    assert credit_code.problem("91350100M000100Y43".translate(other)) is not None


@pytest.mark.parametrize(("raw", "canonical"), [
    ("+86 138-0013-8000", "13800138000"), ("＋８６（１３８）００１３８０００", "13800138000"),
    ("0086 13800138000", "13800138000"), ("010-6552 9988", "01065529988"), ("+86 10 6552 9988", "01065529988"),
    ("１３８　００１３　８０００", "13800138000"),
])
def test_phone_spellings_fold_to_one(raw: str, canonical: str) -> None:
    assert identifiers.phone(raw) == canonical


def test_a_contact_with_a_name_is_kept_as_text() -> None:
    assert identifiers.contact(" 张三 １３８ ") == "张三 138"
    assert identifiers.contact("同上") == "同上"


def test_credit_code_spellings_fold_to_one() -> None:
    assert credit_code.normalise(" ９１３５０１００ｍ０００１００ｙ４３ ") == "91350100M000100Y43"
