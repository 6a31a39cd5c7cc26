"""Identifiers people type: resident ID numbers, phone numbers, unified social credit codes.

Each has one canonical ASCII form, made here and nowhere else, at every boundary (REST bodies, sync
push items, the .xlsx imports, sign-in) before anything validates, compares, indexes or stores it:

- `fold`: Unicode NFKC, every whitespace character removed, upper case. NFKC turns the forms a
  Chinese keyboard or a copied document produces into ASCII: full-width digits and letters
  ("１１０１０５…２Ｘ"), mathematical and other compatibility digits, the ideographic space.
  ID numbers and credit codes are folded, then checked by their own rules
  (backend/registry/idnumber.py, backend/venues/credit_code.py).
- `phone`: folded, separators (hyphens and dashes, parentheses, dots) removed, a +86 / 0086
  country code dropped (a landline then gets its trunk 0 back). A number as a spreadsheet writes it
  (13800138000.0, 5.71889E+09) is refused, and so is a mobile number with more digits after it.
  `mobile` also requires a mainland mobile number (1[3-9] and 9 more digits).
- `contact`: a 联系方式 field. A phone number in it is stored in the canonical form; other text
  (a name beside the number, "同上") is kept as folded text without its outer spaces.

Digits are matched with [0-9], never `\\d`: `\\d` and int() also accept digits of other scripts,
which NFKC leaves as they are (Arabic-Indic ٣, Devanagari ३, Thai ๓ ...). No identifier here is
written with them, and a value holding one is refused rather than read as a number, so one number
never has two stored spellings.

Request schemas use the annotated types below (IdNumberText, CreditCodeText, ContactText), so an
endpoint gets folded values without calling anything; services and importers call the functions.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BeforeValidator

ASCII_DIGITS = re.compile(r"[0-9]+")
# Separators people put inside phone numbers, after NFKC (which already made full-width ones ASCII).
_PHONE_SEPARATORS = dict.fromkeys(map(ord, "-()./\u2010\u2011\u2012\u2013\u2014\u2015\u2212"))
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
PHONE_MIN_DIGITS, PHONE_MAX_DIGITS = 7, 15  # a local landline number .. E.164's longest
# What a spreadsheet writes for a number it kept as a number: 13800138000.0, 5.71889E+09. Its dot is
# not a separator: read as one, 13800138000.0 became the 12 digits 138001380000, and the scientific
# form has already lost digits. Neither is a phone number nor text to keep as a contact.
_SPREADSHEET_NUMBER = re.compile(r"[0-9]+\.0+|[0-9](?:\.[0-9]+)?E[+-][0-9]{2}")


class SpreadsheetNumber(ValueError):
    """A phone number a spreadsheet turned into a number (its digits, or some, are lost)."""


def fold(raw: str) -> str:
    """NFKC, without whitespace, upper case: the canonical spelling of a code typed by a person.
    (NFKC once more at the end: dropping a space or upper-casing can leave a sequence NFKC would compose,
    and folding must give the same result when applied again.)"""
    return unicodedata.normalize("NFKC", "".join(unicodedata.normalize("NFKC", raw).split()).upper())


def foreign_digits(value: str) -> list[str]:
    """The decimal digits in `value` that are not ASCII 0-9 (NFKC left them as they were)."""
    return [ch for ch in value if not ch.isascii() and unicodedata.decimal(ch, None) is not None]


def is_ascii_digits(value: str) -> bool:
    return ASCII_DIGITS.fullmatch(value) is not None


def phone(raw: str) -> str:
    """The canonical form of a phone number: ASCII digits only, mainland numbers without a country
    code (a mobile as its 11 digits, a landline with its 0-prefixed area code). ValueError (in
    English) when `raw` is not a phone number."""
    folded = fold(raw)
    if _SPREADSHEET_NUMBER.fullmatch(folded):
        raise SpreadsheetNumber("the phone number was saved as a number by a spreadsheet (13800138000.0, "
                                "5.71889E+09), which drops a leading 0 and digits after the 15th; type it "
                                "again as text")
    text = folded.translate(_PHONE_SEPARATORS)
    national = None
    for prefix in ("+86", "0086"):
        if text.startswith(prefix):
            national = text[len(prefix):]
            break
    if national is not None:  # a mobile has 11 digits from 1; a landline gets its trunk 0 back
        mobile_like = len(national) == 11 and national.startswith("1")
        text = national if mobile_like or national.startswith("0") else "0" + national
    if foreign_digits(text):
        raise ValueError("a phone number is written with the digits 0-9")
    if not is_ascii_digits(text) or not PHONE_MIN_DIGITS <= len(text) <= PHONE_MAX_DIGITS:
        raise ValueError(f"a phone number has {PHONE_MIN_DIGITS} to {PHONE_MAX_DIGITS} digits 0-9")
    if text.startswith("1") and len(text) > 11:
        # A mobile number with an extension typed after it (13800138000-8001): its digits run together
        # would be one number nobody has. As a contact it is kept as written (text).
        raise ValueError("a mobile number has 11 digits; write an extension apart from it")
    return text


def mobile(raw: str) -> str:
    """A mainland mobile number in its canonical 11 digits (+86, spaces and dashes accepted)."""
    number = phone(raw)
    if not _MOBILE.fullmatch(number):
        raise ValueError("a mainland mobile number has 11 digits starting with 13-19")
    return number


def contact(raw: str) -> str:
    """A contact field: its phone number in canonical form, or other text as folded text. Text
    holding digits of another script is refused (ValueError), never stored beside its ASCII twin."""
    try:
        return phone(raw)
    except SpreadsheetNumber:
        raise
    except ValueError:
        pass
    text = unicodedata.normalize("NFKC", raw).strip()
    if foreign_digits(text):
        raise ValueError("numbers in a contact are written with the digits 0-9") from None
    return text


def _on_text(fn: Callable[[str], str]) -> Callable[[Any], Any]:
    def before(value: Any) -> Any:
        # Anything but text (None, a number) is left to the field's own type to accept or refuse.
        return fn(value) if isinstance(value, str) else value

    return before


# A resident ID number as sent: folded here, checked by backend/registry/idnumber.py (which folds
# again, for callers that are not request schemas). Its masked form folds to itself.
IdNumberText = Annotated[str, BeforeValidator(_on_text(fold))]
# A unified social credit code as sent: folded here, checked by backend/venues/credit_code.py.
CreditCodeText = Annotated[str, BeforeValidator(_on_text(fold))]
# A 联系方式 / 联系电话 field: see `contact`.
ContactText = Annotated[str, BeforeValidator(_on_text(contact))]
