"""The registry of techniques: their names, in the console's order.

A technique is a folder ``capsule_lib/techniques/<name>/``; adding one is that folder plus its name
here.  Only names live here, with nothing imported, so that every layer may read them: model cards
and sample melodies check a technique name without loading a technique, while the command line,
the panels and the studio find each technique's record through
:func:`capsule_lib.techniques.spec.technique`.
"""

from __future__ import annotations

__all__ = ["TECHNIQUES", "technique_names"]

TECHNIQUES = ("arcnn", "gan", "transformer")


def technique_names() -> tuple[str, ...]:
    """The techniques, in the console's order (read at call time, so a test may register one more)."""
    return TECHNIQUES
