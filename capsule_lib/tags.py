"""Tag rules shared by compositions and models (the console's rules, kept exactly).

A tag is a ``key: value`` pair of text.  Keys hold 1-128 characters, values
0-256; both may use Unicode letters, digits, white space and ``_ . : / = + - @``.
Keys are case-sensitive and hold one value each.  A resource holds at most 50
user tags.  Keys starting with ``capsule:`` in any case belong to the system
(technique, model, parent, ...): users can read them but not add, change or
remove them, and they do not count towards the 50.

Text is compared as people see it: keys and values are normalised to Unicode NFC
first (macOS types "é" as "e" plus a combining accent), white space around a key is
dropped, combining marks (accents, the vowel signs of Indic scripts) count as part of
the letter they follow, and a key that merely *looks* like the reserved prefix --
" capsule:", "cаpsule:" with a Cyrillic "а", "ｃａｐｓｕｌｅ:", "capsuIe:" with a capital
I -- is reserved too.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

from .errors import CapsuleError

__all__ = [
    "TagError",
    "validate_tag",
    "set_tag",
    "remove_tag",
    "system_tags",
    "user_tags",
    "is_reserved",
    "MAX_KEY_LENGTH",
    "MAX_VALUE_LENGTH",
    "MAX_USER_TAGS",
    "RESERVED_PREFIX",
]

MAX_KEY_LENGTH = 128
MAX_VALUE_LENGTH = 256
MAX_USER_TAGS = 50
RESERVED_PREFIX = "capsule:"
_SYMBOLS = "_.:/=+-@"
_ALLOWED = "letters, digits, white space and _ . : / = + - @"


class TagError(CapsuleError):
    """A tag breaks one of the tag rules (the message names the rule and the key)."""


def _show(text: str, limit: int = 40) -> str:
    """A short, one-line quoted form of ``text`` for error messages."""
    shown = text if len(text) <= limit else text[:limit] + "…"
    return repr(shown)


def _bad_char(text: str) -> str | None:
    prev_letter = False
    for ch in text:
        # str methods, not an ASCII regex: the rule admits letters and digits of every script,
        # with the combining marks that belong to them.
        if ch.isalpha() or ch.isdigit():
            prev_letter = True
        elif prev_letter and unicodedata.category(ch).startswith("M"):
            continue
        elif ch.isspace() or ch in _SYMBOLS:
            prev_letter = False
        else:
            return ch
    return None


def _normal(text: str) -> str:
    return unicodedata.normalize("NFC", text)


# Letters of other scripts (and ASCII "I", "1") that pass for the letters of "capsule:"
# (from Unicode's confusables list), mapped to the letter they imitate.
_LOOKALIKES = str.maketrans(
    {
        **dict.fromkeys("\u0441\u03f2\u1d04\u2ca5\uabaf", "c"),
        **dict.fromkeys("\u0430\u0251\u03b1", "a"),
        **dict.fromkeys("\u0440\u03c1\u03f1\u2ca3", "p"),
        **dict.fromkeys("\u0455\u01bd\ua731", "s"),
        **dict.fromkeys("\u03c5\u057d\u028b\u1d1c\ua79f", "u"),
        **dict.fromkeys("I1\u04cf\u04c0\u0399\u0406\u01c0\u2c92\u16c1\u07ca\u2d4f", "l"),
        **dict.fromkeys("\u0435\u04bd\uab32", "e"),
        **dict.fromkeys("\u02d0\ua789\ua4fd", ":"),
    }
)


def _skeleton(text: str) -> str:
    """What ``text`` looks like: compatibility forms folded, accents dropped, lookalikes mapped, any case."""
    folded = unicodedata.normalize("NFKD", text.strip())
    bare = "".join(ch for ch in folded if not unicodedata.combining(ch))
    # Before and after case folding: "I" imitates "l", and capitals of other scripts fold to their lookalikes.
    return bare.translate(_LOOKALIKES).casefold().translate(_LOOKALIKES)


def is_reserved(key: str) -> bool:
    """Whether ``key`` carries (or looks like it carries) the system prefix ``capsule:``, in any case."""
    return isinstance(key, str) and _skeleton(key[: 4 * len(RESERVED_PREFIX)]).startswith(RESERVED_PREFIX)


def _as_text(value, what: str) -> str:
    if isinstance(value, str):
        return value
    # Numbers are a natural thing to tag with (year=2024); bools and the rest are not.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise TagError(f"{what} must be text, not {type(value).__name__}")


def validate_tag(key, value="", *, system: bool = False) -> tuple[str, str]:
    """Check one tag against the rules and return it as ``(key, value)`` text.

    Parameters
    ----------
    key : str
        1-128 characters of letters, digits, white space or ``_ . : / = + - @``
        (NFC-normalised; white space around it is dropped).
    value : str, int or float
        0-256 characters from the same set (numbers are turned into text; NFC-normalised).
    system : bool
        Internal use: allow the reserved ``capsule:`` prefix.

    Raises
    ------
    TagError
        Naming the broken rule and the offending key.
    """
    if not isinstance(key, str):
        raise TagError(f"tag key must be text, not {type(key).__name__}")
    key = _normal(key).strip()
    if not key:
        raise TagError(f"tag key is empty; a key needs 1-{MAX_KEY_LENGTH} characters")
    if len(key) > MAX_KEY_LENGTH:
        raise TagError(f"tag key {_show(key)} is {len(key)} characters long; the limit is {MAX_KEY_LENGTH}")
    bad = _bad_char(key)
    if bad is not None:
        raise TagError(f"tag key {_show(key)} contains {bad!r}, which is not allowed (use {_ALLOWED})")
    if is_reserved(key) and not system:
        raise TagError(
            f"tag key {_show(key)} is reserved: keys starting with '{RESERVED_PREFIX}' (any case) "
            "belong to the system and cannot be added, changed or removed"
        )
    value = _normal(_as_text(value, f"value of tag {_show(key)}"))
    if len(value) > MAX_VALUE_LENGTH:
        raise TagError(f"value of tag {_show(key)} is {len(value)} characters long; the limit is {MAX_VALUE_LENGTH}")
    bad = _bad_char(value)
    if bad is not None:
        raise TagError(f"value of tag {_show(key)} contains {bad!r}, which is not allowed (use {_ALLOWED})")
    return key, value


def user_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    """The tags a user set (everything without the ``capsule:`` prefix)."""
    return {k: v for k, v in (tags or {}).items() if not is_reserved(k)}


def set_tag(tags: Mapping[str, str] | None, key, value="") -> dict[str, str]:
    """Return a copy of ``tags`` with the user tag ``key`` set to ``value``.

    Setting an existing key replaces its value (one value per key).

    Raises
    ------
    TagError
        If the tag breaks a rule, uses the reserved prefix, or would be the
        51st user tag of the resource.
    """
    key, value = validate_tag(key, value)
    tags = dict(tags or {})
    if key not in tags and len(user_tags(tags)) >= MAX_USER_TAGS:
        raise TagError(f"cannot add tag {_show(key)}: a resource holds at most {MAX_USER_TAGS} user tags")
    tags[key] = value
    return tags


def remove_tag(tags: Mapping[str, str] | None, key) -> dict[str, str]:
    """Return a copy of ``tags`` without the user tag ``key``.

    Raises
    ------
    TagError
        If ``key`` is reserved or not present.
    """
    if not isinstance(key, str):
        raise TagError(f"tag key must be text, not {type(key).__name__}")
    tags = dict(tags or {})
    if key not in tags:
        key = _normal(key).strip()  # as set_tag stored it
    if is_reserved(key):
        raise TagError(
            f"tag key {_show(key)} is reserved: keys starting with '{RESERVED_PREFIX}' (any case) "
            "belong to the system and cannot be added, changed or removed"
        )
    if key not in tags:
        raise TagError(f"there is no tag {_show(key)} to remove")
    del tags[key]
    return tags


def system_tags(**values) -> dict[str, str]:
    """System tags for internal use: ``system_tags(technique="gan")`` → ``{"capsule:technique": "gan"}``.

    ``None`` values are left out; the other values must still obey the
    character and length rules.
    """
    out = {}
    for name, value in values.items():
        if value is None:
            continue
        key, text = validate_tag(RESERVED_PREFIX + name, value, system=True)
        out[key] = text
    return out
