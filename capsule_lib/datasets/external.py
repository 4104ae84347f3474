"""External multi-track music for the GAN: the Lakh Pianoroll Dataset (LPD-5) and MIDI folders.

Both loaders read files the user already has on disk (nothing is ever downloaded) and
return the same :class:`~capsule_lib.datasets.multitrack.MultitrackDataset` as the
music21 genres, so the GAN trains on either without change.

Formats
    :func:`load_lpd5`
        The Lakh Pianoroll Dataset LPD-5 (the original MuseGAN data, e.g. the
        ``lpd_5_cleansed`` folder): pypianoroll ``.npz`` files, searched recursively,
        as written by ``pypianoroll.save`` (any version: an ``info.json`` member with
        ``resolution`` -- or the old ``beat_resolution`` -- and per-track ``name``,
        ``program``, ``is_drum``; each piano roll stored as the ``pianoroll_<i>_csc_*``
        arrays of a ``(time, 128)`` sparse matrix; an optional ``downbeat`` array).  LPD-5
        holds five tracks named Drums, Piano, Guitar, Bass and Strings at 24 steps per
        beat.  The file is read with numpy alone (no pickles are loaded).
    :func:`load_midi_folder`
        Any folder of multi-track ``.mid``/``.midi`` files (e.g. the Lakh MIDI
        Dataset), searched recursively and read with :func:`capsule_lib.midi.read_midi`.

Track layout (6 tracks, at 4 steps per beat)
    ``0 melody`` (program 80, lead), ``1 drums`` (drum track), ``2 piano`` (0),
    ``3 guitar`` (25), ``4 bass`` (33), ``5 strings`` (48).
    LPD-5 tracks go by name (Drums, Piano, Guitar, Bass, Strings, any case); a track
    with another name, and every MIDI instrument, goes by its General MIDI program:
    drums = drum channel / ``is_drum``; bass = programs 32-39; guitar = 24-31;
    piano = 0-23 (pianos, chromatic percussion, organs); strings = everything else
    (40-127: strings, ensembles, brass, reeds, pipes, synths, ...).  Instruments of
    one category are merged into its track.  Drum notes keep their pitch (GM drum keys).

Grid
    A piano-roll note is a run of consecutive sounding steps of one pitch (in an
    LPD-5 roll a re-struck note held without a gap therefore reads as one long note).
    Starts and ends are mapped to the 4-per-beat grid by rounding (half up); every note
    lasts at least one step; notes of one pitch on one track that overlap after
    rounding are merged.  MIDI files are read straight onto the 4-per-beat grid by the
    same rule.  For LPD-5, when the first downbeat is not at step 0 (a pickup), the
    piece is shifted later so that the first downbeat falls on a 16-step bar line.

Skyline melody
    Track 0 is the *skyline* of the pitched accompaniment tracks piano, guitar and
    strings (never bass, never drums): at each 4-per-beat step, the highest pitch
    sounding there within the model range ``PITCH_LOW``..``PITCH_HIGH``.  Consecutive
    steps of the same pitch form one melody note, except where one of those tracks
    strikes that pitch again (a new onset starts a new melody note).  The
    accompaniment tracks keep all their notes, so the melody doubles their top line.
    A piece whose melody is empty (no piano, guitar or strings notes in range) is
    skipped and counted.

Split (fixed, by piece)
    ``split_of(key)`` of :mod:`.multitrack` -- ``sha256(key) mod 10``: 0 test,
    1 validation, else train -- where ``key`` is the file's path relative to the folder
    given (``/``-separated), or, when the file sits in a folder named like a Million
    Song Dataset track id (``TR`` + 16 letters/digits, as in LPD and Lakh MIDI), that
    id: every version of one song then lands in the same split wherever the data set
    folder is rooted.  ``Piece.path`` is the relative path.

Skipping, duplicates
    Unreadable, corrupt or oversized files and pieces without a melody are skipped
    (``skipped``: ``(relative path, one-line reason)``); a piece whose notes equal an
    earlier piece's is dropped as a duplicate.

Cache
    ``$CAPSULE_HOME/cache/gan/lpd5-v1-<key>`` or ``midi-v1-<key>`` (``.npz`` + ``.json``,
    see :func:`.multitrack.save_dataset`), keyed by the resolved folder, the file list
    with sizes and modification times, and the conversion version: editing, adding or
    removing a file rebuilds the set; otherwise a second call only lists the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ..errors import CapsuleError
from ._corpus import cached_dataset, check_limit, keep_unique, parse_all
from .multitrack import (
    CACHE_VERSION,
    PITCH_HIGH,
    PITCH_LOW,
    RESOLUTION,
    STEPS_PER_BAR,
    GenreSpec,
    MultitrackDataset,
    Piece,
    load_dataset,
    save_dataset,
    split_of,
)

__all__ = [
    "load_lpd5",
    "load_midi_folder",
    "LPD5",
    "MIDI",
    "TRACKS",
    "category_of_program",
    "skyline",
    "roll_to_notes",
]

TRACKS = ("melody", "drums", "piano", "guitar", "bass", "strings")
_PROGRAMS = (80, 0, 0, 25, 33, 48)
_IS_DRUM = (False, True, False, False, False, False)
MELODY, DRUMS, PIANO, GUITAR, BASS, STRINGS = range(6)
_SKYLINE_FROM = (PIANO, GUITAR, STRINGS)

LPD5 = GenreSpec(
    "lpd5",
    "Lakh Pianoroll Dataset LPD-5: skyline melody + drums, piano, guitar, bass, strings",
    TRACKS,
    _PROGRAMS,
    _IS_DRUM,
)
MIDI = GenreSpec(
    "midi", "multi-track MIDI files: skyline melody + drums, piano, guitar, bass, strings", TRACKS, _PROGRAMS, _IS_DRUM
)

#: Bump when the conversion changes: it is part of the cache key, so old caches are rebuilt.
CONVERT_VERSION = 2  # 2: pieces record their split key (cross-validation folds)
MAX_NPZ_BYTES = 64 * 1024 * 1024
MAX_BEATS = 40_000
_MSD_ID = re.compile(r"^TR[A-Z0-9]{16}$")
_LPD_NAMES = {"drums": DRUMS, "piano": PIANO, "guitar": GUITAR, "bass": BASS, "strings": STRINGS}

PathLike = str | os.PathLike


# --------------------------------------------------------------------------- conversion


def category_of_program(program: int, is_drum: bool) -> int:
    """The track index (1-5) an instrument joins, by drum flag and General MIDI program."""
    if is_drum:
        return DRUMS
    program = int(program)
    if 32 <= program <= 39:
        return BASS
    if 24 <= program <= 31:
        return GUITAR
    if 0 <= program <= 23:
        return PIANO
    return STRINGS


def _to_grid(steps: np.ndarray, resolution: int) -> np.ndarray:
    """Steps at ``resolution`` per beat -> steps at 4 per beat, rounding half up (integers only)."""
    return (2 * steps.astype(np.int64) * RESOLUTION + resolution) // (2 * resolution)


def roll_to_notes(times: np.ndarray, pitch: int, resolution: int) -> np.ndarray:
    """``(start, pitch, duration)`` rows at 4 per beat from the sounding steps of one pitch.

    ``times`` are the steps (at ``resolution`` per beat) where the pitch sounds; each run
    of consecutive steps is one note, whose start and end are rounded onto the 4-per-beat
    grid (at least one step long).
    """
    times = np.unique(np.asarray(times, np.int64))
    if not len(times):
        return np.zeros((0, 3), np.int64)
    breaks = np.flatnonzero(np.diff(times) > 1)
    starts = times[np.r_[0, breaks + 1]]
    ends = times[np.r_[breaks, len(times) - 1]] + 1
    s4 = _to_grid(starts, resolution)
    e4 = np.maximum(_to_grid(ends, resolution), s4 + 1)
    return np.stack([s4, np.full_like(s4, pitch), e4 - s4], axis=1)


def _merge_overlaps(rows: np.ndarray) -> np.ndarray:
    """Sorted unique ``(track, start, pitch, duration)`` rows; same-pitch overlaps on a track merged."""
    if not len(rows):
        return np.zeros((0, 4), np.int32)
    rows = rows[np.lexsort((rows[:, 1], rows[:, 2], rows[:, 0]))]  # by track, pitch, start
    out = []
    cur = None
    for t, s, p, d in rows.tolist():
        if cur is not None and cur[0] == t and cur[2] == p and s < cur[1] + cur[3]:
            cur[3] = max(cur[3], s + d - cur[1])
            continue
        if cur is not None:
            out.append(cur)
        cur = [t, s, p, d]
    out.append(cur)
    out = np.asarray(out, np.int64)
    return np.unique(out, axis=0).astype(np.int32)  # sorted by track, start, pitch, duration


def skyline(rows: np.ndarray, tracks: Iterable[int] = _SKYLINE_FROM) -> np.ndarray:
    """The melody of ``(track, start, pitch, duration)`` rows: ``(start, pitch, duration)`` rows.

    At each step the highest pitch (within ``PITCH_LOW``..``PITCH_HIGH``) sounding on one
    of ``tracks``; steps of one pitch join into a note unless that pitch is struck again.
    """
    rows = np.asarray(rows, np.int64).reshape(-1, 4)
    src = rows[np.isin(rows[:, 0], list(tracks)) & (rows[:, 2] >= PITCH_LOW) & (rows[:, 2] <= PITCH_HIGH)]
    if not len(src):
        return np.zeros((0, 3), np.int64)
    length = int((src[:, 1] + src[:, 3]).max())
    top = np.full(length, -1, np.int64)
    onset = np.zeros((length, 128), bool)
    onset[src[:, 1], src[:, 2]] = True
    for s, p, d in src[np.argsort(src[:, 2], kind="stable")][:, 1:].tolist():  # highest pitch written last
        top[s : s + d] = p
    valid = top >= 0
    prev = np.r_[-1, top[:-1]]
    new = valid & ((top != prev) | onset[np.arange(length), np.maximum(top, 0)])
    starts = np.flatnonzero(new)
    stops = np.r_[np.flatnonzero(~valid | new), length]
    ends = stops[np.searchsorted(stops, starts, side="right")]
    return np.stack([starts, top[starts], ends - starts], axis=1)


def _finish(rows: np.ndarray) -> np.ndarray:
    """Merge the accompaniment rows and put the skyline melody (track 0) in front."""
    rows = _merge_overlaps(np.asarray(rows, np.int64).reshape(-1, 4))
    melody = skyline(rows)
    if not len(melody):
        raise CapsuleError("no piano, guitar or strings notes in range to form a melody")
    mel = np.column_stack([np.zeros(len(melody), np.int64), melody])
    return np.unique(np.concatenate([mel, rows]).astype(np.int32), axis=0)


def _one_line(exc: BaseException) -> str:
    msg = str(exc) if isinstance(exc, CapsuleError) else f"{type(exc).__name__}: {exc}"
    return " ".join(msg.split())[:200] or type(exc).__name__


# --------------------------------------------------------------------------- LPD-5 reader


def _read_npz(path: str) -> dict:
    """The tracks of a pypianoroll ``.npz``: ``{"resolution", "name", "downbeat", "tracks"}``.

    ``tracks`` holds ``(name, program, is_drum, rows)`` where ``rows`` are the
    ``(start, pitch, duration)`` notes at 4 steps per beat.
    """
    size = os.path.getsize(path)
    if size > MAX_NPZ_BYTES:
        raise CapsuleError(f"{size / 1e6:.1f} MB; the limit is {MAX_NPZ_BYTES / 1e6:.0f} MB")
    with open(path, "rb") as fh:
        if fh.read(4) != b"PK\x03\x04":
            raise CapsuleError("not an .npz file (no zip header)")
    with np.load(path, allow_pickle=False) as data:
        if "info.json" not in data.files:
            raise CapsuleError("not a pypianoroll file (no info.json)")
        info = json.loads(bytes(data["info.json"]).decode("utf-8"))
        resolution = info.get("resolution", info.get("beat_resolution"))
        if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
            raise CapsuleError(f"bad resolution {resolution!r} in info.json")
        downbeat = np.asarray(data["downbeat"]).astype(bool).ravel() if "downbeat" in data.files else None
        tracks = []
        i = 0
        while str(i) in info:
            meta = info[str(i)] or {}
            key = f"pianoroll_{i}"
            shape = tuple(int(x) for x in np.asarray(data[key + "_csc_shape"]).ravel())
            values = np.asarray(data[key + "_csc_data"]).ravel()
            indices = np.asarray(data[key + "_csc_indices"]).ravel().astype(np.int64)
            indptr = np.asarray(data[key + "_csc_indptr"]).ravel().astype(np.int64)
            if len(shape) != 2 or shape[1] != 128:
                raise CapsuleError(f"track {i}: piano roll shape {shape} is not (time, 128)")
            if shape[0] > MAX_BEATS * resolution:
                raise CapsuleError(f"track {i}: longer than {MAX_BEATS} beats")
            if (
                len(indptr) != 129
                or indptr[0] != 0
                or indptr[-1] != len(indices)
                or len(values) != len(indices)
                or np.any(np.diff(indptr) < 0)
                or (len(indices) and (indices.min() < 0 or indices.max() >= shape[0]))
            ):
                raise CapsuleError(f"track {i}: damaged sparse piano roll")
            sounding = values > 0 if values.dtype != np.bool_ else values
            rows = [
                roll_to_notes(indices[indptr[p] : indptr[p + 1]][sounding[indptr[p] : indptr[p + 1]]], p, resolution)
                for p in range(128)
                if indptr[p + 1] > indptr[p]
            ]
            program = meta.get("program")
            tracks.append(
                (
                    str(meta.get("name") or ""),
                    int(program) if program is not None else 0,
                    bool(meta.get("is_drum")),
                    np.concatenate(rows) if rows else np.zeros((0, 3), np.int64),
                )
            )
            i += 1
    if not tracks:
        raise CapsuleError("no tracks in info.json")
    return {"resolution": resolution, "name": str(info.get("name") or ""), "downbeat": downbeat, "tracks": tracks}


def _lpd_category(name: str, program: int, is_drum: bool) -> int:
    return _LPD_NAMES.get(name.strip().lower(), category_of_program(program, is_drum))


def _parse_lpd5(path: str) -> dict:
    """One LPD-5 file -> ``{"path", "title", "notes"}`` or ``{"path", "error"}`` (never raises)."""
    try:
        read = _read_npz(path)
        parts = []
        for name, program, is_drum, rows in read["tracks"]:
            if len(rows):
                cat = _lpd_category(name, program, is_drum)
                parts.append(np.column_stack([np.full(len(rows), cat, np.int64), rows]))
        if not parts:
            raise CapsuleError("no notes")
        rows = np.concatenate(parts)
        downbeat = read["downbeat"]
        if downbeat is not None and downbeat.any():
            first = int(_to_grid(np.asarray([np.argmax(downbeat)]), read["resolution"])[0])
            rows[:, 1] += (-first) % STEPS_PER_BAR
        return {"path": path, "title": read["name"] or Path(path).stem, "notes": _finish(rows)}
    except Exception as exc:  # a damaged file is skipped with its reason, never fatal
        return {"path": path, "error": _one_line(exc)}


def _parse_midi(path: str) -> dict:
    """One MIDI file -> ``{"path", "title", "notes"}`` or ``{"path", "error"}`` (never raises)."""
    try:
        from ..midi import read_midi

        score = read_midi(path, "all", resolution=RESOLUTION)
        rows = [
            (category_of_program(t.program, t.is_drum), n.start, n.pitch, n.duration)
            for t in score.tracks
            for n in t.notes
        ]
        return {"path": path, "title": score.title or Path(path).stem, "notes": _finish(np.asarray(rows, np.int64))}
    except Exception as exc:
        return {"path": path, "error": _one_line(exc)}


# --------------------------------------------------------------------------- files, cache, build


def _files(source, suffixes: tuple[str, ...], what: str) -> tuple[Path, list[Path]]:
    """``(root, files)``: every matching file under a folder (sorted), or the files given."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.exists():
            raise CapsuleError(f"{what} folder {path} does not exist")
        if path.is_file():
            given = [path]
        else:
            root = path.resolve()
            try:
                files = sorted(p for p in root.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
            except OSError as exc:
                raise CapsuleError(f"cannot list {what} folder {path}: {exc.strerror or exc}") from None
            if not files:
                raise CapsuleError(f"no {'/'.join(suffixes)} files under {path} (expected {what} files)")
            return root, files
    else:
        given = [Path(p).expanduser() for p in source]
        if not given:
            raise CapsuleError(f"no {what} files given")
    files = []
    for p in given:
        if not p.is_file():
            raise CapsuleError(f"{what} file {p} does not exist")
        if p.suffix.lower() not in suffixes:
            raise CapsuleError(f"{p} is not a {'/'.join(suffixes)} file")
        files.append(p.resolve())
    files = list(dict.fromkeys(files))
    root = Path(os.path.commonpath([str(p.parent) for p in files]))
    return root, files


def _split_key(rel: str) -> str:
    parts = rel.split("/")
    return parts[-2] if len(parts) >= 2 and _MSD_ID.match(parts[-2]) else rel


def _cache_stem(name: str, root: Path, files: Sequence[Path], rels: Sequence[str]) -> Path:
    from ..paths import capsule_home

    h = hashlib.sha256(f"{name}\nconvert {CONVERT_VERSION}\n{root}\n".encode())
    for p, rel in zip(files, rels):
        try:
            st = p.stat()
            h.update(f"{rel}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{rel}\t?\n".encode())
    return capsule_home() / "cache" / "gan" / f"{name}-v{CACHE_VERSION}-{h.hexdigest()[:16]}"


def _build(
    spec: GenreSpec, label: str, parse, source, suffixes: tuple[str, ...], *, limit, progress, force, workers
) -> MultitrackDataset:
    check_limit(limit)
    root, files = _files(source, suffixes, label)
    if limit is not None:
        files = files[:limit]
    rels = [p.relative_to(root).as_posix() for p in files]

    def read() -> MultitrackDataset:
        # files are quick to read: many to a chunk
        names = [str(p) for p in files]
        results = parse_all(
            parse, names, workers=workers, desc=f"reading {label} files", unit="file", progress=progress, chunksize=16
        )
        for r, rel in zip(results, rels):
            r["path"] = rel
        kept, skipped, duplicates = keep_unique(results, "notes")
        if not kept:
            raise CapsuleError(
                f"none of the {len(files)} {label} files under {root} could be used "
                f"(first problem: {skipped[0][0]}: {skipped[0][1]})"
            )
        pieces = [
            Piece(r["path"], r["title"], split_of(_split_key(r["path"])), r["notes"], key=_split_key(r["path"]))
            for r in kept
        ]
        return MultitrackDataset(spec, pieces, skipped, duplicates, f"{label} ({len(files)} files under {root})")

    return cached_dataset(
        _cache_stem(spec.name, root, files, rels), force=force, load=load_dataset, save=save_dataset, build=read
    )


def load_lpd5(
    folder_or_files: PathLike | Sequence[PathLike],
    *,
    limit: int | None = None,
    progress: bool = True,
    force: bool = False,
    workers: int | None = None,
) -> MultitrackDataset:
    """The Lakh Pianoroll Dataset LPD-5 (pypianoroll ``.npz`` files) as a 6-track data set.

    Parameters
    ----------
    folder_or_files : path or list of paths
        A folder searched recursively for ``*.npz`` (e.g. ``lpd_5_cleansed``), one file,
        or a list of files (relative paths are then taken from their common folder).
    limit : int, optional
        Read only the first ``limit`` files (in sorted path order).
    progress : bool
        Show a progress bar while reading.
    force : bool
        Rebuild even when a cached copy matches.
    workers : int, optional
        Worker processes (default: one per core, at most 4, for more than 8 files).

    Raises
    ------
    CapsuleError
        If the folder does not exist, holds no ``.npz`` files, or none of them is usable.
    """
    return _build(
        LPD5,
        "LPD-5",
        _parse_lpd5,
        folder_or_files,
        (".npz",),
        limit=limit,
        progress=progress,
        force=force,
        workers=workers,
    )


def load_midi_folder(
    folder: PathLike | Sequence[PathLike],
    *,
    limit: int | None = None,
    progress: bool = True,
    force: bool = False,
    workers: int | None = None,
) -> MultitrackDataset:
    """A folder of multi-track ``.mid``/``.midi`` files (recursive) as a 6-track data set.

    Instruments are grouped by General MIDI program into drums, piano, guitar, bass and
    strings, after the skyline melody (see the module notes).  Arguments as
    :func:`load_lpd5`.
    """
    return _build(
        MIDI,
        "MIDI",
        _parse_midi,
        folder,
        (".mid", ".midi"),
        limit=limit,
        progress=progress,
        force=force,
        workers=workers,
    )
