"""Voice leading for GAN accompaniment: the parts' ranges, and decoding the parts *jointly*.

Part ranges
    :data:`PART_RANGES` gives, per part name of the genre data sets, the MIDI range a part
    may use: the singer's range for the voices of chorales and Renaissance polyphony (the
    usual textbook ranges, widened to hold at least 99.5 % of the corpus' own notes), the
    instrument's practical range for the strings of a quartet.
"""

from __future__ import annotations

__all__ = ["PART_RANGES", "part_range"]

#: part name -> (lowest, highest) MIDI pitch.
PART_RANGES = {
    # Bach chorales: SATB
    "soprano": (60, 81), "alto": (53, 74), "tenor": (47, 69), "bass": (38, 62),
    # string quartet: open G string / C string up to a practical top
    "violin 1": (55, 100), "violin 2": (55, 91), "viola": (48, 81), "cello": (36, 72),
    # Renaissance polyphony (music21's Palestrina and Monteverdi as written)
    "cantus": (57, 81), "altus": (50, 76), "bassus": (36, 64),
}


def part_range(name: str) -> tuple[int, int] | None:
    """The range of the part ``name`` (None for a part without one, e.g. a custom data set's)."""
    return PART_RANGES.get(str(name).strip().lower())
