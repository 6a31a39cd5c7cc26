"""The 18-character unified social credit code (统一社会信用代码, GB 32100-2015).

Layout: registration authority (1), entity category (1), administrative division (6),
organisation code (9, GB 11714), check character (1). The alphabet is the digits and the capital
letters without I, O, Z, S and V (31 symbols, each worth its position); the check character is
31 - (sum of value * weight mod 31), with 31 written as "0".
"""

from __future__ import annotations

from backend.core import identifiers

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
LENGTH = 18


def normalise(raw: str) -> str:
    """The canonical spelling (backend/core/identifiers.py): NFKC (full-width to ASCII), no
    whitespace, upper case. Characters outside the ASCII alphabet stay and are refused by `problem`."""
    return identifiers.fold(raw)


def check_character(body: str) -> str:
    """The check character for the first 17 characters (which must use the GB 32100 alphabet)."""
    if len(body) != LENGTH - 1:
        raise ValueError("the body of a credit code has 17 characters")
    total = 0
    for ch, weight in zip(body, WEIGHTS, strict=True):
        if ch not in _VALUE:
            raise ValueError(f"'{ch}' is not allowed in a credit code")
        total += _VALUE[ch] * weight
    return ALPHABET[(31 - total % 31) % 31]


def problem(raw: str) -> str | None:
    """Why `raw` is not a valid credit code (English), or None when it is."""
    code = normalise(raw)
    if len(code) != LENGTH:
        return f"a credit code has 18 characters, this one has {len(code)}"
    bad = sorted({ch for ch in code if ch not in _VALUE})
    if bad:
        return f"characters not allowed in a credit code: {''.join(bad)}"
    if check_character(code[:-1]) != code[-1]:
        return "the check character does not match (a character was mistyped)"
    return None


def is_valid(raw: str) -> bool:
    """Whether `raw` is a well-formed credit code with a matching check character."""
    return problem(raw) is None


def complete(body: str) -> str:
    """Append the check character to a 17-character body (synthetic data, tests)."""
    body = normalise(body)
    return body + check_character(body)
