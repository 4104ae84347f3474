"""The GAN's face in the studio: it has no sliders -- a model (one per genre) and instruments per track."""

from __future__ import annotations

from ..spec import TechniqueSpec

__all__ = ["SPEC"]

SPEC = TechniqueSpec(
    name="gan",
    title="GAN",
    verb="Accompany",
    doing="Accompanying",
    default_model="musegan-chorale",
    summary="A generator trained against a critic writes accompaniment tracks beneath your melody.",
    parameters=(),
)
