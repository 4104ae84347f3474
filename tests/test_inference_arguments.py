"""One argument check for every technique (issue 18 item 11): flags are True or False."""

from __future__ import annotations

import pytest

from capsule_lib import CapsuleError, accompany, enhance, extend, load_sample

TECHNIQUES = {"enhance": enhance, "accompany": accompany, "extend": extend}


@pytest.mark.parametrize("technique", sorted(TECHNIQUES))
@pytest.mark.parametrize("flag", ["save", "return_composition"])
@pytest.mark.parametrize("value", ["yes", 1, 0, None, "False"])
def test_every_technique_refuses_a_flag_that_is_not_a_bool(technique, flag, value):
    # The model does not exist: the flag is checked first, before any model is loaded.
    with pytest.raises(CapsuleError, match=f"{flag} must be True or False"):
        TECHNIQUES[technique](load_sample("ode_to_joy"), model="no-such-model", **{flag: value})


def test_enhance_checks_harmonize_the_same_way():
    with pytest.raises(CapsuleError, match="harmonize must be True or False"):
        enhance(load_sample("ode_to_joy"), model="no-such-model", harmonize="yes")
