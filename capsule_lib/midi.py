"""MIDI files ⇄ :class:`~capsule_lib.score.Score`, built on :mod:`mido`.

Documented behaviour for the awkward corners of real MIDI files:

* **Tracks.** Every (MIDI track, channel) pair holding notes becomes one
  :class:`Track`; channel 10 (index 9) is a drum track.  Type-0 files are split
  by channel.  The first program change on a channel sets the track's program.
* **Timing.** Ticks are mapped to the step grid (``resolution`` steps per beat,
  24 by default) by rounding.  Files whose notes lie on that grid round-trip exactly.
* **Tempo.** The tempo at tick 0 becomes ``Score.tempo`` (120 bpm if none);
  later tempo changes are kept in ``Score.tempo_changes``.  Note positions are
  in beats, so tempo changes never move notes.  Tempos are kept to 1/1000 bpm
  within what MIDI can store (:data:`~capsule_lib.score.MIN_BPM` ..
  :data:`~capsule_lib.score.MAX_BPM`): a tempo of 0 microseconds per beat (not
  valid MIDI, but it occurs) is read as the fastest, 1 microsecond per beat.
* **Text.** Titles and track names are written as UTF-8 (MIDI text events are
  bytes; UTF-8 is what current software reads), so "Dvořák" survives; names
  that are not valid UTF-8 are read as Latin-1, MIDI's traditional charset.
* **Time signature.** The first one is used for the whole piece (any numerator,
  power-of-two denominator); later changes are ignored.
* **Overlapping notes** of the same pitch are paired first-in first-out, so both
  survive whenever the later one also ends later (a note nested inside a longer
  one of the same pitch is ambiguous in MIDI itself).  **Zero-length notes** (drum hits often are) last one step.
  Notes still sounding at the end of a track end there.  A note-on with
  velocity 0 is a note-off; running status is handled by mido.
* **Sustain pedal** (CC64 ≥ 64 down) is kept as ``Track.pedals`` intervals;
  :func:`capsule_lib.edit.resolve_sustain` applies it to note lengths.
* **Limits.** Files over ``MAX_MIDI_BYTES``, with more than ``MAX_NOTES``
  notes (counting every note-on, released or not) or longer than ``MAX_BEATS``
  beats are refused with a CapsuleError.  :func:`write_midi` refuses the same
  scores, so every file it writes reads back.
* **Files.** ``.mid``, ``.midi``, ``.kar``, ``.smf`` and RIFF-wrapped ``.rmi``
  names are read (an RMID file's inner MIDI data is used whatever its name).
"""

from __future__ import annotations

import io
import os
from collections import defaultdict, deque
from pathlib import Path
from statistics import median

from .atomic import atomic_write_bytes
from .errors import CapsuleError
from .score import DEFAULT_RESOLUTION, MAX_BPM, MIN_BPM, Note, Score, Track

__all__ = ["read_midi", "write_midi", "midi_bytes", "MAX_MIDI_BYTES", "MAX_NOTES", "MAX_BEATS"]

MAX_MIDI_BYTES = 16 * 1024 * 1024
MAX_NOTES = 200_000
MAX_BEATS = 40_000  # about five and a half hours at 120 bpm

Source = str | os.PathLike | bytes | bytearray | memoryview


def _load_bytes(source: Source, max_bytes: int) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, label = bytes(source), "MIDI data"
    else:
        path = Path(source)
        label = f"MIDI file {path.name}"
        if path.suffix.lower() not in (".mid", ".midi", ".kar", ".smf", ".rmi"):
            raise CapsuleError(f"{path.name} is not a MIDI file (expected a .mid or .midi name)")
        try:
            if path.stat().st_size > max_bytes:
                raise CapsuleError(
                    f"{label} is {path.stat().st_size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB"
                )
            data = path.read_bytes()  # read-only: the user's file is never touched
        except FileNotFoundError:
            raise CapsuleError(f"{path} does not exist") from None
        except IsADirectoryError:
            raise CapsuleError(f"{path} is a folder, not a MIDI file") from None
        except PermissionError:
            raise CapsuleError(f"{path} cannot be read (permission denied)") from None
    if not data:
        raise CapsuleError(f"{label} is empty")
    if len(data) > max_bytes:
        raise CapsuleError(f"{label} is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB")
    if data[:4] == b"RIFF" and b"MThd" in data[:64]:
        data = data[data.index(b"MThd") :]  # RMID: a standard MIDI file wrapped in RIFF
    if data[:4] != b"MThd":
        raise CapsuleError(f"{label} is not a MIDI file (no MThd header)")
    return data, label


def _parse(data: bytes, label: str):
    import mido

    try:
        mid = mido.MidiFile(file=io.BytesIO(data), clip=True)
    except Exception as exc:  # mido raises many types for damaged files
        detail = str(exc).strip() or type(exc).__name__
        raise CapsuleError(f"{label} is corrupt or truncated ({detail})") from None
    if mid.type == 2:
        raise CapsuleError(f"{label} is a type-2 MIDI file (independent sequences), which is not supported")
    # mido reads the division as a signed 16-bit number: SMPTE divisions (top bit set) are negative.
    if not isinstance(mid.ticks_per_beat, int) or mid.ticks_per_beat < 0 or mid.ticks_per_beat >= 0x8000:
        raise CapsuleError(f"{label} uses SMPTE time division, which is not supported")
    if mid.ticks_per_beat == 0:
        raise CapsuleError(f"{label} has a time division of 0 ticks per beat; it must be at least 1")
    return mid


def _to_step(tick: int, tpb: int, resolution: int) -> int:
    # Round half up with integers only, so the mapping is exact and platform-free.
    return (2 * tick * resolution + tpb) // (2 * tpb)


def read_midi(
    source: Source,
    track: int | str | None = None,
    *,
    resolution: int = DEFAULT_RESOLUTION,
    max_bytes: int = MAX_MIDI_BYTES,
) -> Score:
    """Read a MIDI file (path or bytes) into a :class:`Score`.

    Parameters
    ----------
    source : path or bytes
        A ``.mid``/``.midi`` file, or its bytes.
    track : None, "all", int or str
        ``None`` picks the melody track (see :func:`pick_melody`) and returns a
        one-track score; ``"all"`` keeps every track; an int or a name picks
        that track (indices count tracks that hold notes, in file order).
    resolution : int
        Steps per beat of the returned score.

    Raises
    ------
    CapsuleError
        For a missing, empty, non-MIDI, corrupt, truncated or oversized file,
        a file without notes, or an unknown ``track``.
    """
    data, label = _load_bytes(source, max_bytes)
    mid = _parse(data, label)
    tpb = mid.ticks_per_beat

    def step(tick: int) -> int:
        return _to_step(tick, tpb, resolution)

    tempos: list[tuple[int, float]] = []
    time_sig: tuple[int, int] | None = None
    title = ""
    parts: dict[tuple[int, int], dict] = {}
    n_notes = 0  # every note-on counts: notes never released must not slip past the cap
    max_tick = MAX_BEATS * tpb

    for ti, mtrk in enumerate(mid.tracks):
        tick = 0
        name = ""
        open_notes: dict[tuple[int, int], deque] = defaultdict(deque)
        pedal_down: dict[int, int] = {}
        for msg in mtrk:
            tick += msg.time
            if tick > max_tick:
                raise CapsuleError(f"{label} is longer than {MAX_BEATS} beats; the limit keeps memory bounded")
            kind = msg.type
            if kind == "set_tempo":
                tempos.append((tick, mido_tempo_to_bpm(msg.tempo)))
            elif kind == "time_signature":
                if time_sig is None:
                    time_sig = (msg.numerator, msg.denominator)
            elif kind == "track_name":
                name = name or _from_midi_text(msg.name).strip()
            elif kind in ("note_on", "note_off", "control_change", "program_change"):
                part = parts.setdefault((ti, msg.channel), {"notes": [], "program": None, "pedals": [], "name": ""})
                if kind == "program_change":
                    if part["program"] is None:
                        part["program"] = msg.program
                elif kind == "control_change":
                    if msg.control == 64:
                        if msg.value >= 64 and msg.channel not in pedal_down:
                            pedal_down[msg.channel] = tick
                        elif msg.value < 64 and msg.channel in pedal_down:
                            part["pedals"].append((pedal_down.pop(msg.channel), tick))
                elif kind == "note_on" and msg.velocity > 0:
                    n_notes += 1
                    if n_notes > MAX_NOTES:
                        raise CapsuleError(f"{label} has more than {MAX_NOTES} notes; the limit keeps memory bounded")
                    open_notes[(msg.channel, msg.note)].append((tick, msg.velocity))
                else:
                    queue = open_notes.get((msg.channel, msg.note))
                    if queue:
                        start, vel = queue.popleft()
                        part["notes"].append((start, tick, msg.note, vel))
        # Stuck notes and pedals end with their track.
        for (channel, pitch), queue in open_notes.items():
            for start, vel in queue:
                parts[(ti, channel)]["notes"].append((start, tick, pitch, vel))
        for channel, down in pedal_down.items():
            parts[(ti, channel)]["pedals"].append((down, tick))
        for (pti, _), part in parts.items():
            if pti == ti:
                part["name"] = name
        if ti == 0 and not any(p == 0 for p, _ in parts) and name:
            title = name

    channels_per_track = defaultdict(int)
    for (ti, _channel), part in parts.items():
        if part["notes"]:
            channels_per_track[ti] += 1

    tracks: list[Track] = []
    for (ti, ch), part in sorted(parts.items()):
        if not part["notes"]:
            continue
        notes = []
        for start_tick, end_tick, pitch, vel in part["notes"]:
            start = step(start_tick)
            end = max(step(end_tick), start + 1)
            notes.append(Note(start, pitch, end - start, vel))
        pedals = tuple((step(a), step(b)) for a, b in part["pedals"])
        name = part["name"] or ("drums" if ch == 9 else f"track {len(tracks) + 1}")
        if channels_per_track[ti] > 1:
            name = f"{name} (channel {ch + 1})"
        tracks.append(
            Track(name=name, program=part["program"] or 0, is_drum=ch == 9, notes=tuple(notes), pedals=pedals)
        )

    if not tracks:
        raise CapsuleError(f"{label} contains no notes")

    tempos.sort(key=lambda x: x[0])
    tempo = 120.0
    changes: list[tuple[int, float]] = []
    for tick, bpm in tempos:
        s = step(tick)
        if s == 0:
            tempo = bpm
        elif bpm != (changes[-1][1] if changes else tempo):
            changes.append((s, bpm))
    num, den = time_sig or (4, 4)
    if num < 1 or den < 1 or den & (den - 1):
        num, den = 4, 4

    score = Score(
        tracks=tuple(tracks),
        tempo=tempo,
        time_signature=(num, den),
        resolution=resolution,
        tempo_changes=tuple(changes),
        title=title,
    )
    _check_writable(score, label)  # what read_midi returns, write_midi writes (and vice versa)
    if track is None:
        return score.replace(tracks=(score.tracks[pick_melody(score)],))
    if track == "all":
        return score
    return score.replace(tracks=(score.tracks[score.track_index(track)],))


def mido_tempo_to_bpm(tempo: int) -> float:
    """Microseconds per beat → beats per minute, rounded to 1/1000 bpm for stable round trips.

    Kept within :data:`MIN_BPM` .. :data:`MAX_BPM`, the tempos MIDI can store: 0 (not valid
    MIDI, though files hold it) counts as 1 microsecond per beat.
    """
    return min(max(round(60_000_000 / max(int(tempo), 1), 3), MIN_BPM), MAX_BPM)


def _bpm_to_mido_tempo(bpm: float) -> int:
    return min(max(int(round(60_000_000 / bpm)), 1), 0xFFFFFF)


def _to_midi_text(text: str) -> str:
    """``text`` as mido writes it with its Latin-1 codec: the UTF-8 bytes, one character per byte."""
    return str(text).encode("utf-8", "replace").decode("latin-1")


def _from_midi_text(text: str) -> str:
    """The inverse of :func:`_to_midi_text`; text that is not UTF-8 stays as read (Latin-1)."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def _check_writable(score: Score, label: str = "the score") -> None:
    """Refuse a score a MIDI file cannot hold, or that :func:`read_midi` would refuse."""
    limit = MAX_BEATS * score.resolution
    n_notes = sum(len(t.notes) for t in score.tracks)
    if n_notes > MAX_NOTES:
        raise CapsuleError(f"{label} has {n_notes} notes, more than the {MAX_NOTES} a file may hold")
    last = max([score.end, *(b for t in score.tracks for _, b in t.pedals), *(s for s, _ in score.tempo_changes)])
    if last > limit:
        raise CapsuleError(
            f"{label} is {last / score.resolution:.2f} beats long, longer than the {MAX_BEATS}-beat limit"
        )
    if _ticks_per_beat(score.resolution) >= 0x8000:
        raise CapsuleError(f"{label} has {score.resolution} steps per beat; a MIDI file holds at most 32767")
    num, den = score.time_signature
    if num > 255 or den > 2**255:
        raise CapsuleError(f"time signature {num}/{den} cannot be stored in a MIDI file")


def pick_melody(score: Score) -> int:
    """Index of the track most likely to be the melody.

    Among non-drum tracks holding at least a third as many notes as the
    busiest one, the track with the highest median pitch wins (melodies sit on
    top); ties go to the track with more notes.
    """
    candidates = [i for i, t in enumerate(score.tracks) if not t.is_drum and t.notes]
    if not candidates:
        raise CapsuleError("the MIDI file has only drum tracks; there is no melody to pick")
    busiest = max(len(score.tracks[i].notes) for i in candidates)
    candidates = [i for i in candidates if len(score.tracks[i].notes) * 3 >= busiest]
    return max(candidates, key=lambda i: (median(n.pitch for n in score.tracks[i].notes), len(score.tracks[i].notes)))


def _ticks_per_beat(resolution: int) -> int:
    return resolution * max(1, round(480 / resolution))


def midi_bytes(score: Score) -> bytes:
    """Encode ``score`` as a type-1 Standard MIDI File and return the bytes.

    Raises
    ------
    CapsuleError
        For a score :func:`read_midi` would refuse (more than ``MAX_NOTES`` notes,
        longer than ``MAX_BEATS`` beats) or a MIDI file cannot hold.
    """
    import mido

    _check_writable(score)
    tpb = _ticks_per_beat(score.resolution)
    k = tpb // score.resolution

    def bpm_msg(bpm: float, tick: int):
        return (tick, 0, mido.MetaMessage("set_tempo", tempo=_bpm_to_mido_tempo(bpm), time=0))

    conductor = [
        (
            0,
            0,
            mido.MetaMessage(
                "time_signature", numerator=score.time_signature[0], denominator=score.time_signature[1], time=0
            ),
        ),
        bpm_msg(score.tempo, 0),
    ]
    if score.title:
        conductor.insert(0, (0, 0, mido.MetaMessage("track_name", name=_to_midi_text(score.title), time=0)))
    conductor += [bpm_msg(b, s * k) for s, b in score.tempo_changes]

    mid = mido.MidiFile(type=1, ticks_per_beat=tpb)
    mid.tracks.append(_to_mtrk(conductor))

    melodic = [c for c in range(16) if c != 9]
    n_melodic = 0
    for t in score.tracks:
        if t.is_drum:
            ch = 9
        else:
            ch = melodic[n_melodic % len(melodic)]
            n_melodic += 1
        events = [
            (0, 0, mido.MetaMessage("track_name", name=_to_midi_text(t.name), time=0)),
            (0, 0, mido.Message("program_change", channel=ch, program=t.program, time=0)),
        ]
        for down, up in t.pedals:
            events.append((down * k, 1, mido.Message("control_change", channel=ch, control=64, value=127, time=0)))
            events.append((up * k, 0, mido.Message("control_change", channel=ch, control=64, value=0, time=0)))
        # Order within a tick: note-offs (0) before note-ons (2), so repeated notes of
        # one pitch stay separate; notes are sorted so same-start ons go shortest first.
        for n in t.notes:
            events.append(
                (n.start * k, 2, mido.Message("note_on", channel=ch, note=n.pitch, velocity=n.velocity, time=0))
            )
            events.append((n.end * k, 0, mido.Message("note_off", channel=ch, note=n.pitch, velocity=0, time=0)))
        mid.tracks.append(_to_mtrk(events))
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def _to_mtrk(events):
    import mido

    track = mido.MidiTrack()
    last = 0
    for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=tick - last))
        last = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def write_midi(score: Score, path: str | os.PathLike) -> Path:
    """Write ``score`` to ``path`` atomically (the old file stays intact if anything fails)."""
    path = Path(path)
    if path.suffix.lower() not in (".mid", ".midi"):
        raise CapsuleError(f"{path.name}: a MIDI file name must end in .mid or .midi")
    return atomic_write_bytes(path, midi_bytes(score))
