"""Tag rules: lengths, characters, reserved prefix, one value per key, 50 user tags."""

import pytest

from capsule_lib import CapsuleError
from capsule_lib.tags import (
    MAX_USER_TAGS,
    TagError,
    is_reserved,
    remove_tag,
    set_tag,
    system_tags,
    user_tags,
    validate_tag,
)


def test_tag_error_is_a_capsule_error():
    assert issubclass(TagError, CapsuleError)


@pytest.mark.parametrize(
    "key, value",
    [
        ("a", ""),
        ("k" * 128, "v" * 256),
        ("genre", "jazz"),
        ("Größe", "groß"),  # Latin letters beyond ASCII
        ("作曲家", "バッハ"),  # CJK and kana letters
        ("ключ", "значение"),
        ("key with spaces", "tab\tand space"),
        ("a_b.c:d/e=f+g-h@i", "_.:/=+-@"),
        ("٣٤", "१२३"),  # Arabic-Indic and Devanagari digits
        ("value-prefix", "capsule:ok"),  # only keys are reserved; values may use the prefix
    ],
)
def test_valid_tags_pass(key, value):
    assert validate_tag(key, value) == (key, value)


def test_key_length_limits():
    with pytest.raises(TagError, match="empty"):
        validate_tag("", "v")
    with pytest.raises(TagError, match="129 characters.*128"):
        validate_tag("k" * 129, "v")


def test_value_length_limit_names_the_key():
    with pytest.raises(TagError, match=r"'mood'.*257 characters.*256"):
        validate_tag("mood", "x" * 257)


@pytest.mark.parametrize("bad", ["#", "!", "?", "*", "$", "(", "\x00", "😀", "~", ",", ";"])
def test_disallowed_characters_in_key_and_value(bad):
    with pytest.raises(TagError, match=r"'k.*'.*not allowed"):
        validate_tag(f"k{bad}", "v")
    with pytest.raises(TagError, match=r"value of tag 'k'.*not allowed"):
        validate_tag("k", f"v{bad}")


@pytest.mark.parametrize("key", ["capsule:technique", "CAPSULE:x", "Capsule:", "cApSuLe:model"])
def test_reserved_prefix_in_any_case(key):
    assert is_reserved(key)
    with pytest.raises(TagError, match="reserved"):
        validate_tag(key, "v")
    with pytest.raises(TagError, match="reserved"):
        set_tag({}, key, "v")
    with pytest.raises(TagError, match="reserved"):
        remove_tag({key: "v"}, key)


def test_prefix_look_alikes_are_user_tags():
    for key in ("capsule", "capsules:x", "my capsule:x", "capsule-x"):
        assert not is_reserved(key)
        assert set_tag({}, key, "v") == {key: "v"}


def test_non_text_keys_and_values():
    with pytest.raises(TagError, match="key must be text"):
        validate_tag(3, "v")
    with pytest.raises(TagError, match="must be text"):
        validate_tag("k", None)
    with pytest.raises(TagError, match="must be text"):
        validate_tag("k", True)
    assert validate_tag("year", 2024) == ("year", "2024")


def test_set_tag_returns_a_new_dict_and_replaces_values():
    tags = {"capsule:technique": "gan"}
    one = set_tag(tags, "mood", "calm")
    assert tags == {"capsule:technique": "gan"}  # input untouched
    two = set_tag(one, "mood", "wild")
    assert two == {"capsule:technique": "gan", "mood": "wild"}
    assert set_tag(two, "Mood", "x")["mood"] == "wild"  # case-sensitive keys are different tags
    assert len(set_tag(two, "Mood", "x")) == 3


def test_fifty_user_tag_limit_ignores_system_tags():
    tags = system_tags(technique="gan", model="jazz-1", parent="20260101T000000-000001-abcd1234")
    for i in range(MAX_USER_TAGS):
        tags = set_tag(tags, f"k{i}", str(i))
    assert len(user_tags(tags)) == MAX_USER_TAGS
    assert len(tags) == MAX_USER_TAGS + 3
    with pytest.raises(TagError, match="at most 50"):
        set_tag(tags, "one-too-many", "x")
    # replacing an existing value is not a new tag
    assert set_tag(tags, "k0", "new")["k0"] == "new"
    # after removing one, there is room again
    assert "fresh" in set_tag(remove_tag(tags, "k1"), "fresh", "")


def test_remove_tag():
    tags = {"a": "1", "b": "2"}
    assert remove_tag(tags, "a") == {"b": "2"}
    assert tags == {"a": "1", "b": "2"}
    with pytest.raises(TagError, match="no tag 'zzz'"):
        remove_tag(tags, "zzz")


def test_system_tags_bypass_the_reservation_but_not_the_character_rules():
    assert system_tags(technique="arcnn", model=None) == {"capsule:technique": "arcnn"}
    with pytest.raises(TagError, match="not allowed"):
        system_tags(model="bad#name")


def test_user_tags_filters_system_keys():
    tags = {"capsule:model": "m", "CAPSULE:x": "y", "mood": "calm"}
    assert user_tags(tags) == {"mood": "calm"}


def test_long_keys_are_shortened_in_messages():
    with pytest.raises(TagError) as info:
        validate_tag("k" * 500, "v")
    assert len(str(info.value)) < 200
    assert "\n" not in str(info.value)


# -- issue 18 item 10: keys compared as people see them ------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        " capsule:model",  # leading space
        "capsule:model ",
        "\u00a0capsule:x",  # no-break space
        "c\u0430psule:model",  # Cyrillic a
        "\u0441\u0430\u0440\u0455\u0443le:x".replace("\u0443", "u"),  # Cyrillic c, a, p, s
        "\u0421\u0410\u0420SULE:x",  # Cyrillic capitals C, A, P
        "capsul\u0435:model",  # Cyrillic e
        "capsuIe:model",  # capital I for l
        "capsu1e:model",  # digit one for l
        "\uff43\uff41\uff50\uff53\uff55\uff4c\uff45:x",  # fullwidth letters
        "capsule\u02d0x",  # modifier-letter colon
        "ca\u0301psule:x",  # an accent over the a
    ],
)
def test_keys_that_look_like_the_reserved_prefix_are_reserved(key):
    assert is_reserved(key)
    with pytest.raises(TagError, match="reserved"):
        set_tag({}, key, "v")


def test_lookalike_checks_leave_ordinary_keys_alone():
    for key in ("capsules", "capsule", "capsule-model", "kapsule:x", "cap:sule", "ключ:значение", "capsuie:x"):
        assert not is_reserved(key), key
        assert set_tag({}, key, "v") == {key: "v"}


def test_keys_and_values_are_normalised_to_nfc_and_keys_stripped():
    decomposed, composed = "caf\u0065\u0301", "caf\u00e9"
    assert validate_tag(decomposed, decomposed) == (composed, composed)
    tags = set_tag({}, f"  {decomposed} ", "x")
    assert tags == {composed: "x"}
    assert remove_tag(tags, decomposed) == {}


def test_combining_marks_belong_to_their_letter():
    assert validate_tag("हिंदी", "मराठी") == ("हिंदी", "मराठी")  # vowel signs are combining marks
    with pytest.raises(TagError, match="not allowed"):
        validate_tag("\u0301a", "v")  # a mark with no letter before it
