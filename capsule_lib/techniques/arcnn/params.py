"""The AR-CNN's parameters as the console named them: the one definition of their defaults and ranges."""

from __future__ import annotations

from ..spec import Parameter, TechniqueSpec

__all__ = ["SPEC"]

# The parameters are a table: one row per parameter (the formatter would spread each over ten lines).
# fmt: off
SPEC = TechniqueSpec(
    name="arcnn",
    title="AR-CNN",
    verb="Enhance",
    doing="Enhancing",
    default_model="arcnn-bach",
    summary="A U-Net trained on Bach chorales adds notes Bach might have written and removes ones that stick out.",
    parameters=(
        Parameter("sampling_iterations", "Sampling iterations", "int", 12, 1, 100, step=1,
                  help="How many times the melody passes through the model: more passes add and remove more notes."),
        Parameter("max_remove_pct", "Maximum input notes to remove", "float", 20.0, 0, 100, step=1, unit="%",
                  help="At most this share of your melody's notes may be removed."),
        Parameter("max_notes_added", "Maximum number of notes to add", "int", 400, 0, 1000, step=1,
                  help="At most this many notes are added in all."),
        Parameter("creative_risk", "Creative risk", "float", 1.0, 0, 4, step=0.1,
                  help="Low: only the notes the model finds most likely. High: it takes chances."),
        Parameter("harmonize", "Harmonize", "bool", False,
                  help="Keep the melody as it is and write voices beneath it."),
    ),
)
# fmt: on
