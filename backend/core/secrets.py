"""The service's secrets: refused at start in production when weak, and one derived key per purpose.

**Per-purpose keys.** `HULEI_JWT_SECRET` is the master secret. Nothing signs with it directly: each
purpose (access tokens, refresh successors, calendar feed tokens, photo links, list cursors) uses a
key derived from it with HKDF-SHA256 (RFC 5869) under its own label. A derived key cannot be turned
back into the master or into another purpose's key, so a key that leaks from one place (a log, a
debugger, a library bug) opens that purpose only, and a token of one purpose is never valid as
another's. The blind index of ID numbers keeps its own key (`HULEI_ID_NUMBER_INDEX_KEY`): stored
indexes and content hashes depend on it, so it is neither derived nor used for anything new.

**The production check** (`check_production`, run by the API's `create_app` and by the worker)
refuses to start, naming every offending setting in one message and never printing a value or any
part of it (not even the template word it found), when:
- a secret is a development default or a template value: it contains CHANGE_ME, "changeme",
  "secret", "password", "example", "placeholder", "dev-only", "insecure", "qwerty" ... once
  disguises are taken off (`skeletons`: Unicode NFKC, so full-width ＣＨＡＮＧＥ is CHANGE; Cyrillic
  and Greek look-alike letters made Latin, `CONFUSABLES`; case folded; leetspeak read both ways,
  `LEET`: 4/@ a, 3 e, 0 o, 1 i or l, 5/$ s, 7/+ t ...; everything but letters and digits dropped);
- a text secret (master, blind-index key) does not look generated: shorter than 32 bytes; spaces
  or control characters; mostly a repeated pattern, even with a few characters added
  (`novel_share`, an LZ77 parse); a run of neighbouring code points (abc..., 000102...) or a walk
  over neighbouring keys (qwerty..., 1qaz2wsx...) more often than random values would with a chance
  of one in ten million (`MAX_CHANCE`); few distinct characters or steps between them; words
  (`reads_as_words`: a sentence, a passphrase, CamelCase, pinyin); hex or base64 of bytes that are
  not random (the AES rules below); an estimated entropy under 96 bits (`estimated_bits`). Every
  rule is passed by the generators infra/README.md lists: a test draws 1,000 of each;
- the blind-index key is the master secret once stripped, case-folded and NFKC-normalised, or one
  contains the other;
- an AES key (`HULEI_ID_NUMBER_KEYS`) is not base64 of 16, 24 or 32 bytes, is not random bytes (one
  byte value, few distinct bytes, an arithmetic progression or few distinct steps between
  neighbours such as 0, 1, 2 ... or 0, 7, 14 ..., printable text), or has a development key id
  ("dev..."); or the active key id is not among them;
- photos are stored in S3 and the secret key is missing or fails the text rules at 16 bytes and 64
  bits (some providers issue 30-character secrets);
- DATABASE_URL has a password (none, as with peer or trust authentication over a socket, is fine)
  shorter than 16 characters or failing the text rules.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import math
import re
import unicodedata
from collections import Counter
from enum import StrEnum
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from backend.core.config import Settings, get_settings

# Fixed, public salt (RFC 5869 §3.1: a constant salt still separates this application's keys from
# any other use of the same secret); the purpose goes in `info`.
_SALT = b"hulei/key-derivation/v1"
_KEY_BYTES = 32


class Purpose(StrEnum):
    """What a derived key is for; the value is the HKDF info label (changing one retires its tokens)."""

    jwt = "hulei/v1/jwt-access-token"
    refresh_successor = "hulei/v1/refresh-successor"
    calendar_feed = "hulei/v1/calendar-feed-token"
    media_link = "hulei/v1/media-link"
    cursor = "hulei/v1/list-cursor"
    address_throttle = "hulei/v1/address-throttle"  # digests of addresses kept by rate limits
    push_receipt = "hulei/v1/push-receipt"  # the key in the URL push channels post receipts to


@lru_cache(maxsize=64)
def _derive(master: str, info: str) -> bytes:
    # Keyed on the secret's value, so tests that change the settings get keys of the new secret.
    hkdf = HKDF(algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=_SALT, info=info.encode())
    return hkdf.derive(master.encode())


def purpose_key(purpose: Purpose, settings: Settings | None = None) -> bytes:
    """The 32-byte key of one purpose, derived from the master secret (HULEI_JWT_SECRET)."""
    return _derive((settings or get_settings()).jwt_secret, purpose.value)


# ---------------------------------------------------------------- the production check


class InsecureConfiguration(RuntimeError):
    """Production settings that must not be used; the message names each one."""


# ---- normalisation: what a secret "says" once its disguises are taken off

# Letters of other scripts that look like Latin ones (a subset of Unicode's confusables.txt, TR39:
# the Cyrillic and Greek letters an IME or a copy from a web page puts in "Latin" text). Upper case
# is mapped before case folding (Greek "Η" looks like H, its lower case "η" like n).
CONFUSABLES = str.maketrans({
    # Cyrillic
    "А": "A", "В": "B", "С": "C", "Е": "E", "Н": "H", "І": "I", "Ј": "J", "К": "K", "М": "M", "О": "O",
    "Р": "P", "Ѕ": "S", "Т": "T", "Х": "X", "У": "Y", "Ү": "Y", "Ԛ": "Q", "Ԝ": "W", "Ь": "b",
    "а": "a", "в": "b", "с": "c", "ԁ": "d", "е": "e", "ё": "e", "һ": "h", "і": "i", "ї": "i", "ј": "j",
    "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "ԛ": "q", "ѕ": "s", "т": "t", "у": "y", "ү": "y",
    "ԝ": "w", "х": "x", "ь": "b", "г": "r", "п": "n", "и": "u", "л": "n",
    # Greek
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "α": "a", "β": "b", "γ": "y", "ε": "e", "η": "n", "ι": "i",
    "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ς": "s",
})
# Leetspeak, applied after case folding; "1" stands for i or l, so both readings are checked.
LEET = {"4": "a", "@": "a", "8": "b", "3": "e", "6": "g", "9": "g", "!": "i", "|": "l", "0": "o", "5": "s",
        "$": "s", "7": "t", "+": "t"}
_LEET_I = str.maketrans({**LEET, "1": "i"})
_LEET_L = str.maketrans({**LEET, "1": "l"})


def folded(value: str) -> str:
    """NFKC (full-width ＣＨＡＮＧＥ becomes CHANGE), look-alike Cyrillic and Greek letters made Latin,
    then case-folded: two secrets that fold the same are the same secret to a person reading them."""
    return unicodedata.normalize("NFKC", value).translate(CONFUSABLES).casefold()


def skeletons(value: str) -> set[str]:
    """What the value spells: folded, stripped of all but letters and digits, read as written and
    read as leetspeak (CH4NGE_M3 and P@ssw0rd spell changeme and password)."""
    flat = folded(value)
    return {re.sub(r"[^a-z0-9]", "", variant) for variant in (flat, flat.translate(_LEET_I), flat.translate(_LEET_L))}


# Compared with every skeleton of the secret (above).
TEMPLATE_MARKERS = ("changeme", "replaceme", "secret", "password", "passwd", "passw0rd", "example",
                    "placeholder", "devonly", "insecure", "default", "fillin", "qwerty", "letmein")
# An access key is a name, not a secret: only the placeholders themselves are refused.
PLACEHOLDERS = ("changeme", "replaceme", "placeholder")
MIN_SECRET_BYTES = 32
MIN_SECRET_BITS = 96.0
MIN_DATABASE_PASSWORD_CHARS = 16
MAX_ANALYSED = 1024  # characters of a text secret the rules look at (the first ones)
# Rules that count events (neighbours one code point apart, neighbours on neighbouring keys) refuse
# a value only when a random one would have as many with a chance under this: each such rule
# refuses at most one honest value in ten million.
MAX_CHANCE = 1e-7
# Adjacent characters one code point apart (or equal), as in "abcdef", "123456", "aaaa": about 1 in
# 6 neighbours of random hex digits, 1 in 20 of base64 characters; counted against 1 in 5.
STEP_CHANCE = 0.2
# Share of the (folded) value that must be new material, not a copy of an earlier stretch of 5+
# characters ("hulei2026" * 5 + "x" is 22% new; random values are 95% and more).
MIN_NOVEL_SHARE = 0.75
MIN_REPEAT = 5
# "Reads as words" (see `reads_as_words`): words of 3+ letters cover this share of the value; unless
# it is all capitals, at most this share of the letters are capitals and at most this share stand
# in runs of capitals; vowels are at least this share of the letters; no word has 5 consonants in a row.
MIN_WORD_COVER = 0.7
MIN_WORDS_LENGTH = 24  # shorter, random letters read as words too often to tell (see the test)
MAX_CAPITALS = 0.3
MAX_CAPITAL_RUNS = 0.05
MIN_VOWELS = 0.3
MIN_WORD_LETTERS = 8  # distinct letters in the words (hex digits have six)
_WORD = re.compile(r"[A-Z]?[a-z]{2,}|[A-Z]{3,}(?![a-z])")
_CAPITAL_RUN = re.compile(r"[A-Z]{2,}")
_CONSONANTS = re.compile(r"[bcdfghjklmnpqrstvwxz]{5,}")
# A US/PC keyboard (Chinese layouts are the same), unshifted and shifted, and each row's offset in
# key widths: keys are neighbours when on the same or the next row and at most one key width apart.
_KEYBOARD = (("`1234567890-=", "~!@#$%^&*()_+", 0.0), ("qwertyuiop[]\\", "QWERTYUIOP{}|", 0.5),
             ("asdfghjkl;'", 'ASDFGHJKL:"', 0.75), ("zxcvbnm,./", "ZXCVBNM<>?", 1.25))
_KEY_AT = {c: (row, col + offset) for row, (plain, shifted, offset) in enumerate(_KEYBOARD)
           for keys in (plain, shifted) for col, c in enumerate(keys)}
# Neighbouring characters on neighbouring keys, as in a keyboard walk (qwerty..., 1qaz2wsx...):
# about 1 in 6 of random hex digits or URL-safe characters; counted against 1 in 4.
KEYBOARD_CHANCE = 0.25
_HEX = re.compile(r"[0-9a-fA-F]+")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")


def _template_marker(value: str, markers: tuple[str, ...] = TEMPLATE_MARKERS) -> bool:
    return any(m in flat for flat in skeletons(value) for m in markers)


def _period(value: str) -> str:
    """The shortest unit the value is a repetition of ("abcabcab" -> "abc")."""
    for size in range(1, len(value) // 2 + 1):
        unit = value[:size]
        if (unit * (len(value) // size + 1))[: len(value)] == value:
            return unit
    return value


def estimated_bits(value: str) -> float:
    """A rough entropy estimate: Shannon entropy of the characters times the length of the value's
    shortest repeating unit, plus the Miller-Madow correction ((distinct - 1) / 2 nats) for the
    underestimate of a short sample. 64 URL-safe random characters give about 350 bits, 32 hex
    digits about 128; "hulei2026" repeated gives 33. One rule among several, not a proof of
    randomness."""
    unit = _period(value)
    counts = Counter(unit)
    per_char = -sum(n / len(unit) * math.log2(n / len(unit)) for n in counts.values())
    return per_char * len(unit) + (len(counts) - 1) / (2 * math.log(2))


def _steps(value: str) -> int:
    return sum(abs(ord(b) - ord(a)) <= 1 for a, b in itertools.pairwise(value))


def _improbable(count: int, trials: int, chance: float) -> bool:
    """Whether `count` events or more in `trials` would happen by chance less than MAX_CHANCE
    (the binomial tail, summed in logarithms so that long values do not overflow)."""
    def log_term(k: int) -> float:
        return (math.lgamma(trials + 1) - math.lgamma(k + 1) - math.lgamma(trials - k + 1)
                + k * math.log(chance) + (trials - k) * math.log1p(-chance))
    return sum(math.exp(log_term(k)) for k in range(max(count, 0), trials + 1)) < MAX_CHANCE


def novel_share(value: str, min_repeat: int = MIN_REPEAT) -> float:
    """The share of characters that are not part of a copy of an earlier stretch of the value (of
    `min_repeat` characters or more, overlapping allowed): an LZ77 parse, the idea of zlib's
    compression without its fixed overhead, which makes zlib useless on 40 characters."""
    novel, i = 0, 0
    while i < len(value):
        longest = 0
        for j in range(i):
            k = 0
            while i + k < len(value) and value[j + k] == value[i + k]:
                k += 1
            longest = max(longest, k)
        if longest >= min_repeat:
            i += longest
        else:
            novel, i = novel + 1, i + 1
    return novel / len(value) if value else 0.0


def reads_as_words(value: str) -> bool:
    """Whether the value is text a person wrote (a sentence, a passphrase, CamelCase, pinyin, in
    capitals or not) rather than generated. Text is mostly words of 3 letters or more, each with a
    vowel ("The", "quick", "Horse", "shengchan"); its capitals start words (or it is all capitals),
    so they are few and seldom two in a row; and it is pronounceable: vowels are 30% of the letters
    or more, no word has 5 consonants in a row, and the words use 8 different letters or more (hex
    digits have six letters). Random mixed-case values make half their letters capitals, side by
    side every few characters; random letters are a fifth vowels and have such clusters. Each test
    alone is met by some random values, all of them together by next to none (a test draws
    thousands); values under MIN_WORDS_LENGTH characters are too short to tell."""
    text = unicodedata.normalize("NFKC", value).translate(CONFUSABLES)
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return False
    capitals = sum(c.isupper() for c in letters)
    if capitals == len(letters):  # ALL CAPITALS
        text = text.lower()
    elif capitals > MAX_CAPITALS * len(letters) or \
            sum(map(len, _CAPITAL_RUN.findall(text))) > MAX_CAPITAL_RUNS * len(letters):
        return False
    words = [w for w in (w.lower() for w in _WORD.findall(text)) if re.search("[aeiouy]", w)]
    covered = sum(map(len, words))
    if covered < MIN_WORD_COVER * len(text):
        return False
    vowels = sum(w.count(v) for w in words for v in "aeiou")
    return (vowels >= MIN_VOWELS * covered and len(set("".join(words))) >= MIN_WORD_LETTERS
            and not any(_CONSONANTS.search(w) for w in words))


def keyboard_neighbours(value: str) -> int:
    """How many neighbouring characters are on neighbouring keys (or the same key)."""
    near = 0
    for a, b in itertools.pairwise(value):
        if a in _KEY_AT and b in _KEY_AT:
            (ra, xa), (rb, xb) = _KEY_AT[a], _KEY_AT[b]
            near += abs(ra - rb) <= 1 and abs(xa - xb) <= 1.0
    return near


def _distinct_steps(values: list[int], modulo: int | None = None) -> int:
    steps = [(b - a) % modulo if modulo else b - a for a, b in itertools.pairwise(values)]
    return len(set(steps))


def random_bytes_problem(key: bytes) -> str | None:
    """Why bytes are not random, or None: one value, few distinct values, an arithmetic progression
    or few distinct steps between neighbours (0, 1, 2 ...; 100, 101 ...; 0, 7, 14 ...), printable
    text. 16 random bytes have about 15 distinct values and steps; the limits are half the length
    (at most 64)."""
    if len(set(key)) == 1:
        return "is one byte value repeated (all zero?)"
    if len(set(key)) < min(len(key) // 2, 64):
        return "has too few distinct bytes to be random"
    if _distinct_steps(list(key), 256) < min(len(key) // 2, 64):
        return "is a progression (few distinct steps between its bytes), not random bytes"
    if all(0x20 <= b < 0x7F for b in key):
        return "is printable text, not random bytes"
    return None


def _decoded(value: str) -> bytes | None:
    """The bytes a hex or base64 (standard or URL-safe) value encodes, if it is one of 16 bytes or more."""
    try:
        if _HEX.fullmatch(value) and len(value) % 2 == 0:
            return bytes.fromhex(value)
        if _BASE64.fullmatch(value):
            body = value.rstrip("=").replace("-", "+").replace("_", "/")
            return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return None


def text_secret_problem(value: str | None, *, min_bytes: int = MIN_SECRET_BYTES,
                        min_bits: float = MIN_SECRET_BITS) -> str | None:
    """Why a text secret is too weak for production, or None. Messages never quote the value.

    A secret must look generated: every rule below is passed, with overwhelming probability, by the
    output of the generators infra/README.md lists (a test draws thousands of them), and each fails
    a kind of value people type."""
    if not value:
        return "is not set"
    value = value[:MAX_ANALYSED]
    if _template_marker(value):
        return "is a template or development value; generate it as infra/README.md says"
    if len(value.encode()) < min_bytes:
        return f"is shorter than {min_bytes} bytes"
    if any(c.isspace() or not c.isprintable() for c in value):
        return "contains spaces or control characters: generated values have none"
    flat = folded(value)
    if _period(flat) != flat or novel_share(flat) < MIN_NOVEL_SHARE:
        return "is mostly a repeated pattern"
    if (_improbable(_steps(value), len(value) - 1, STEP_CHANCE)
            or _distinct_steps([ord(c) for c in flat]) < min(12, len(flat) // 4)):
        return "is mostly a run or walk of neighbouring characters (abc..., 123..., aaa...)"
    if _improbable(keyboard_neighbours(value), len(value) - 1, KEYBOARD_CHANCE):
        return "is a walk over neighbouring keys of the keyboard"
    if len(set(flat)) < min(8, len(flat) // 4):
        return "has too few distinct characters"
    if len(value) >= MIN_WORDS_LENGTH and reads_as_words(value):
        return "reads as words (a sentence, a passphrase, pinyin); generate a random value"
    decoded = _decoded(value)
    if decoded is not None and len(decoded) >= 16 and (problem := random_bytes_problem(decoded)):
        return "encodes bytes that are not random (" + problem.removeprefix("is ").removeprefix("has ") + ")"
    if estimated_bits(value) < min_bits:
        return f"has too little entropy (about {estimated_bits(value):.0f} bits, {min_bits:.0f} needed)"
    return None


def database_password_problem(password: str) -> str | None:
    """Why the password in DATABASE_URL is unfit, or None: the text-secret rules at 16 characters."""
    if len(password) < MIN_DATABASE_PASSWORD_CHARS:
        return f"has a database credential shorter than {MIN_DATABASE_PASSWORD_CHARS} characters"
    if problem := text_secret_problem(password, min_bytes=MIN_DATABASE_PASSWORD_CHARS, min_bits=32.0):
        return "has a weak database credential: it " + problem
    return None


def same_secret(a: str, b: str) -> bool:
    """Whether two secrets are the same to a person (spaces around, case, full width, look-alikes
    aside), or one contains the other."""
    fa, fb = folded(a.strip()), folded(b.strip())
    return bool(fa and fb) and (fa in fb or fb in fa)


def aes_key_problem(key_id: str, encoded: str) -> str | None:
    """Why one "key_id:base64" entry of HULEI_ID_NUMBER_KEYS is unfit for production, or None."""
    if _template_marker(encoded):
        return "is a template value; generate one with `openssl rand -base64 32`"
    if key_id.lower().startswith("dev"):
        return "has a development key id (dev...)"
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return "is not valid base64"
    if len(key) not in (16, 24, 32):
        return f"is {len(key)} bytes; AES keys are 16, 24 or 32"
    return random_bytes_problem(key)


def production_problems(settings: Settings) -> list[str]:
    """Every setting unfit for production, as "NAME: reason" (values are never included)."""
    problems: list[str] = []

    def check(name: str, reason: str | None) -> None:
        if reason:
            problems.append(f"{name} {reason}")

    defaults = Settings.model_fields
    master = settings.jwt_secret
    check("HULEI_JWT_SECRET", "is the development default" if master == defaults["jwt_secret"].default
          else text_secret_problem(master))
    index_key = settings.id_number_index_key
    check("HULEI_ID_NUMBER_INDEX_KEY", "is the development default"
          if index_key == defaults["id_number_index_key"].default else text_secret_problem(index_key))
    if index_key and master and same_secret(index_key, master):
        check("HULEI_ID_NUMBER_INDEX_KEY", "must differ from HULEI_JWT_SECRET (one leak would open both)")

    key_ids: list[str] = []
    for part in settings.id_number_keys.split(","):
        if not part.strip():
            continue
        key_id, sep, encoded = part.strip().partition(":")
        if not sep or not key_id:
            check("HULEI_ID_NUMBER_KEYS", "has an entry that is not key_id:base64")
            continue
        key_ids.append(key_id)
        check(f"HULEI_ID_NUMBER_KEYS ({key_id})", aes_key_problem(key_id, encoded))
    if not key_ids:
        check("HULEI_ID_NUMBER_KEYS", "is not set")
    elif settings.id_number_active_key not in key_ids:
        check("HULEI_ID_NUMBER_ACTIVE_KEY", "names no key of HULEI_ID_NUMBER_KEYS")

    if settings.media_storage == "s3":
        check("HULEI_MEDIA_S3_SECRET_KEY", text_secret_problem(settings.media_s3_secret_key, min_bytes=16,
                                                               min_bits=64.0))
        access = settings.media_s3_access_key
        check("HULEI_MEDIA_S3_ACCESS_KEY", "is not set" if not access else
              "is a template value" if _template_marker(access, PLACEHOLDERS) else None)

    try:
        password = make_url(settings.database_url).password
    except (ArgumentError, ValueError):
        password = None
    if password:  # none (peer or trust authentication over a socket) is fine
        check("DATABASE_URL", database_password_problem(str(password)))
    return problems


def check_production(settings: Settings | None = None) -> None:
    """In production, refuse to start with any weak secret (InsecureConfiguration naming each)."""
    s = settings or get_settings()
    if not s.production:
        return
    problems = production_problems(s)
    if problems:
        raise InsecureConfiguration(
            "refusing to start in production (HULEI_PRODUCTION=true) with weak secrets; see the "
            "\"Secrets\" section of infra/README.md for how to generate each:\n- " + "\n- ".join(problems))
