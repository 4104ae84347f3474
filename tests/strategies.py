"""Hypothesis strategies for scores on the step grid."""

from hypothesis import strategies as st

from capsule_lib import Note, Score, Track


@st.composite
def grid_tracks(draw, *, allow_same_pitch_overlap=False, max_notes=30, max_step=200, is_drum=None):
    n = draw(st.integers(1, max_notes))
    notes = []
    busy: dict[int, list[tuple[int, int]]] = {}
    for _ in range(n):
        pitch = draw(st.integers(0, 127))
        start = draw(st.integers(0, max_step))
        dur = draw(st.integers(1, 48))
        vel = draw(st.integers(1, 127))
        spans = busy.setdefault(pitch, [])
        if not allow_same_pitch_overlap and any(start < e and s < start + dur for s, e in spans):
            continue
        if any(s == start and e == start + dur for s, e in spans):
            continue  # an exact duplicate cannot be told apart in any format
        spans.append((start, start + dur))
        notes.append(Note(start, pitch, dur, vel))
    drum = draw(st.booleans()) if is_drum is None else is_drum
    return Track(
        name=draw(st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=12)),
        program=draw(st.integers(0, 127)),
        is_drum=drum,
        notes=tuple(notes),
    )


@st.composite
def grid_scores(draw, *, allow_same_pitch_overlap=False, max_tracks=4):
    tracks = draw(
        st.lists(
            grid_tracks(allow_same_pitch_overlap=allow_same_pitch_overlap, is_drum=False),
            min_size=1,
            max_size=max_tracks,
        )
    )
    if draw(st.booleans()):
        tracks.append(draw(grid_tracks(allow_same_pitch_overlap=allow_same_pitch_overlap, is_drum=True)))
    resolution = draw(st.sampled_from([1, 2, 3, 4, 6, 8, 12, 24, 48, 96]))
    num = draw(st.integers(1, 12))
    den = draw(st.sampled_from([2, 4, 8, 16]))
    tempo = draw(st.integers(40, 240))
    return Score(tracks=tuple(tracks), tempo=float(tempo), time_signature=(num, den), resolution=resolution)
