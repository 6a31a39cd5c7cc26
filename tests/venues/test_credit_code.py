"""The unified social credit code check (GB 32100)."""

from __future__ import annotations

import pytest

from backend.venues import credit_code

# Codes printed on the business licences of well-known companies (public registry entries).
PUBLISHED = ["9144030071526726XG", "914403001922038216", "91330100799655058B", "91110000600037341L"]


@pytest.mark.parametrize("code", PUBLISHED)
def test_published_company_codes_are_valid(code: str) -> None:
    assert credit_code.is_valid(code)


@pytest.mark.parametrize("code", PUBLISHED)
def test_any_single_mistyped_character_is_caught(code: str) -> None:
    for pos in range(18):
        for ch in credit_code.ALPHABET:
            if ch != code[pos]:
                assert not credit_code.is_valid(code[:pos] + ch + code[pos + 1:]), (pos, ch)


def test_letters_outside_the_alphabet_and_wrong_lengths_are_refused() -> None:
    assert "not allowed" in (credit_code.problem("9144030071526726IG") or "")
    assert "not allowed" in (credit_code.problem("91440300O1526726XG") or "")
    assert "18 characters" in (credit_code.problem("9144030071526726X") or "")
    assert "check character" in (credit_code.problem("9144030071526726XH") or "")


def test_lower_case_and_spaces_are_accepted_as_typed() -> None:
    assert credit_code.is_valid(" 91440300 71526726xg ")
    assert credit_code.normalise(" 91440300 71526726xg ") == "9144030071526726XG"


def test_completing_a_body_yields_a_valid_code() -> None:
    assert credit_code.is_valid(credit_code.complete("92990101ABCDEFGH1"))
