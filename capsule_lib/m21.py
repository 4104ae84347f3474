"""Score ⇄ music21 streams (music21 is imported only when these are called)."""

from __future__ import annotations

from fractions import Fraction

from .errors import CapsuleError
from .score import DEFAULT_RESOLUTION, Note, Score, Track

__all__ = ["to_music21", "from_music21", "expand_repeats", "parse_corpus"]


def to_music21(score: Score):
    """A ``music21.stream.Score`` with one part per track; durations are exact fractions of a beat."""
    from music21 import instrument, meter, note, stream, tempo

    out = stream.Score()
    if score.title:
        from music21 import metadata

        out.metadata = metadata.Metadata(title=score.title)
    for i, t in enumerate(score.tracks):
        part = stream.Part(id=f"track{i}")
        part.partName = t.name
        if t.is_drum:
            inst = instrument.UnpitchedPercussion()
            inst.midiChannel = 9
        else:
            try:
                inst = instrument.instrumentFromMidiProgram(t.program)
            except Exception:  # music21 lacks a class for some programs
                inst = instrument.Instrument()
            inst.midiProgram = t.program
        part.insert(0, inst)
        if i == 0:
            part.insert(0, meter.TimeSignature(f"{score.time_signature[0]}/{score.time_signature[1]}"))
            part.insert(0, tempo.MetronomeMark(number=score.tempo))
            for s, bpm in score.tempo_changes:
                part.insert(Fraction(s, score.resolution), tempo.MetronomeMark(number=bpm))
        for n in t.notes:
            m = note.Note(n.pitch)
            m.quarterLength = Fraction(n.duration, score.resolution)
            m.volume.velocity = n.velocity
            part.insert(Fraction(n.start, score.resolution), m)
        out.insert(0, part)
    return out


def from_music21(stream_or_score, *, resolution: int = DEFAULT_RESOLUTION, title: str | None = None) -> Score:
    """A Score from a music21 Score/Part/Stream: one track per part, ties merged, chords split."""
    from music21 import chord, note, stream, tempo

    if not isinstance(stream_or_score, stream.Stream):
        raise CapsuleError(f"expected a music21 stream, got {type(stream_or_score).__name__}")
    parts = list(stream_or_score.parts) if stream_or_score.hasPartLikeStreams() else [stream_or_score]

    def step(q) -> int:
        return int(round(Fraction(q) * resolution))

    tracks = []
    for i, part in enumerate(parts):
        flat = part.stripTies().flatten()
        notes = []
        for el in flat.notes:
            pitches = el.pitches if isinstance(el, chord.Chord) else [el.pitch] if isinstance(el, note.Note) else []
            start = step(el.offset)
            dur = max(1, step(el.offset + el.quarterLength) - start)
            vel = el.volume.velocity if el.volume is not None and el.volume.velocity else 100
            for p in pitches:
                if 0 <= p.midi <= 127:
                    notes.append(Note(start, int(p.midi), dur, int(vel)))
        inst = part.getInstrument(returnDefault=False)
        program = inst.midiProgram if inst is not None and inst.midiProgram is not None else 0
        is_drum = inst is not None and inst.midiChannel == 9
        name = part.partName or (part.id if isinstance(part.id, str) else "") or f"part {i + 1}"
        tracks.append(Track(name=name, program=int(program), is_drum=is_drum, notes=tuple(notes)))

    flat_all = stream_or_score.flatten()
    marks = sorted(
        (
            (step(m.offset), m.getQuarterBPM())
            for m in flat_all.getElementsByClass(tempo.MetronomeMark)
            if m.getQuarterBPM()
        ),
        key=lambda x: x[0],
    )
    bpm = marks[0][1] if marks and marks[0][0] == 0 else 120.0
    changes = tuple((s, b) for s, b in marks if s > 0)
    sigs = flat_all.getTimeSignatures(returnDefault=True)
    ts = (sigs[0].numerator, sigs[0].denominator) if sigs else (4, 4)
    if title is None:
        md = getattr(stream_or_score, "metadata", None)
        title = (md.title or "") if md is not None else ""
    return Score(
        tracks=tuple(tracks),
        tempo=float(bpm),
        time_signature=ts,
        resolution=resolution,
        tempo_changes=changes,
        title=title or "",
    )


def expand_repeats(stream) -> tuple:
    """``(stream, expanded)``: the stream with its repeats written out, or as written when music21 cannot.

    Corpus files with malformed repeat marks make music21 raise (its ``ExpanderException``
    and friends); the data sets keep such a piece as written and count it.
    """
    try:
        return stream.expandRepeats(), True
    except Exception:  # music21 raises several types for malformed repeats
        return stream, False


def parse_corpus(path: str, *, resolution: int = DEFAULT_RESOLUTION) -> tuple[Score, bool]:
    """``(score, expanded)``: a music21 corpus path (e.g. ``"bach/bwv269"``) as a Score, repeats expanded.

    ``expanded`` is False when the repeats could not be expanded (see :func:`expand_repeats`).
    """
    from music21 import corpus

    stream, expanded = expand_repeats(corpus.parse(path))
    return from_music21(stream, resolution=resolution), expanded
