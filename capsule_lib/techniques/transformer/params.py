"""The Transformer's parameters as the console named them: the one definition of their defaults and ranges.

The library accepts longer durations than the console's sliders offered (``slider``): a
script may ask for a five-minute extension, the studio's slider stops at a minute.
"""

from __future__ import annotations

from ..spec import Parameter, TechniqueSpec

__all__ = ["SPEC"]

# The parameters are a table: one row per parameter (the formatter would spread each over ten lines).
# fmt: off
SPEC = TechniqueSpec(
    name="transformer",
    title="Transformer",
    verb="Extend",
    doing="Extending",
    default_model="transformer-classical",
    summary="A Transformer-XL reads music as text and continues your melody, token by token.",
    parameters=(
        Parameter("sampling", "Sampling technique", "choice", "topk",
                  choices=(("TopK", "topk"), ("Nucleus", "nucleus"), ("Random", "random")),
                  help="How the next token is chosen: from the top share of tokens (TopK), the most likely "
                  "ones up to a total probability (Nucleus), or from all of them (Random)."),
        Parameter("threshold", "Sampling threshold", "float", 0.8, 0.1, 0.99, step=0.01,
                  help="TopK: the share of the 310 tokens kept. Nucleus: the total probability kept."),
        Parameter("creative_risk", "Creative risk", "float", 1.0, 0.1, 4.0, step=0.1,
                  help="Temperature: 1 is the model's own probabilities, higher is more daring."),
        Parameter("input_duration", "Input duration", "float", 10.0, 0.0, 600.0, low_inclusive=False, step=1,
                  slider=(1.0, 60.0), unit="s", help="Seconds from the end of your melody the model reads first."),
        Parameter("extension_duration", "Track extension duration", "float", 30.0, 0.0, 300.0, low_inclusive=False,
                  step=1, slider=(1.0, 60.0), unit="s", help="Seconds of new music to write after your melody."),
        Parameter("max_rest", "Maximum rest time", "float", 2.0, 0.0, 60.0, low_inclusive=False, step=0.1,
                  slider=(0.1, 10.0), unit="s", help="Longer silences in the extension are shortened to this."),
        Parameter("max_note_length", "Maximum note length", "float", 2.0, 0.0, 60.0, low_inclusive=False, step=0.1,
                  slider=(0.1, 10.0), unit="s", help="Longer notes in the extension are shortened to this."),
        Parameter("follow_prompt", "Follow the melody", "bool", True,
                  help="Keep the extension in your melody's key and register and off notes that clash with it."),
    ),
)
# fmt: on
