"""How the techniques' output sounds, measured against Bach: the music yardstick of issue 15.

The figures (see :mod:`capsule_lib.metrics`, "Whole-score metrics") are computed from the
*written MIDI file* of each output, read back and put on a roll of 4 steps per beat:

polyphony   mean number of sounding pitches over the steps where anything sounds
clash       share of sounding steps holding two pitches 1, 11 or 13 semitones apart
in key      share of note onsets in the scale of the best-fitting key (Krumhansl-Kessler)
parallels   parallel fifths/octaves per 100 joint moves of two voices (tracks), pooled

Melodies judged: the 10 sample melodies and the folk melodies of ``bench/folk_melodies.json``
(48 tunes of music21's ``essenFolksong`` and ``ryansMammoth`` collections, which no model
trains on; built once by ``--rebuild-folk`` and committed, so the bench needs no parsing),
each transposed to several keys (``--keys``, default 0, +4 and -5 semitones).  Every
technique x model x setting of the issue runs on every melody with a fixed seed per melody.

Reference rows: Bach's chorales (music21's corpus: the four voices, Soprano, Alto, Tenor and
Bass, of every chorale that names them, written as 4-track MIDI files; the instrumental parts
some chorales add double a voice, so they are left out) and the console's own AR-CNN output (its Ode to Joy sample, figures
as the issue measured them: the file is not in this repository).

Extra columns per technique
    enhance(harmonize)  the share of outputs whose melody track is the input's, note for note;
    accompany           the share with the melody kept; the share of parts' notes inside the
                        part's range (:data:`capsule_lib.techniques.gan.voicing.PART_RANGES`);
                        the share of the steps where bass and melody both sound at which the
                        bass is above the melody;
    extend              (the extension alone) in key against the *prompt's* key, clash, and
                        the share of extensions whose mean pitch lies within an octave of the
                        prompt's (the register kept).

Usage: ``python bench/bench_music.py [--quick] [--keys 0,4,-5] [--rows bach,enhance,console,gan,extend]
[--threads 1] [--json OUT.json] [--midi-dir DIR]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import capsule_lib as cl
from capsule_lib import metrics as M
from capsule_lib.score import Note, Score, Track

HERE = Path(__file__).resolve().parent
FOLK_FILE = HERE / "folk_melodies.json"
#: (corpus file, tunes taken): German, Luxembourgish, Irish, Swiss folk songs and fiddle tunes.
FOLK_SOURCES = (
    ("essenFolksong/kinder0", 5),
    ("essenFolksong/erk10", 5),
    ("essenFolksong/boehme10", 5),
    ("essenFolksong/fink0", 5),
    ("essenFolksong/lux", 5),
    ("essenFolksong/irl", 5),
    ("essenFolksong/zuccal0", 5),
    ("essenFolksong/altdeu10", 5),
    ("ryansMammoth", 8),
)
FOLK_TEMPO = 100.0
FOLK_BARS = (8, 24)

BACH = "Bach chorales (reference)"
#: The console's AR-CNN output, its Ode to Joy sample, as issue 15 measured it (no parallels: one track).
CONSOLE = {"polyphony": 4.20, "clash": 0.062, "in_key": 0.98, "parallels": math.nan}
#: Issue 15's targets: figure -> (low, high) per row kind.
TARGETS = {
    "enhance defaults": {"polyphony": (3.3, 4.2), "clash": (None, 0.05), "in_key": (0.95, None)},
    "enhance console": {"clash": (None, 0.062), "in_key": (0.95, None)},
    "enhance harmonize": {"polyphony": (3.5, None), "clash": (None, 0.05), "melody_kept": (1.0, None)},
    "accompany": {
        "clash": (None, 0.06),
        "in_key": (0.92, None),
        "parallels": (None, 2.0),
        "melody_kept": (1.0, None),
        "in_range": (0.99, None),
        "bass_above": (None, 0.01),
    },
    "extend": {"in_key_prompt": (0.90, None), "clash": (None, 0.06), "register_kept": (1.0, None)},
}


# --------------------------------------------------------------------------- melodies


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _usable(score: Score) -> str | None:
    """Why a parsed folk tune is not a simple melody for the bench (None: it is)."""
    if len(score.tracks) != 1 or not score.tracks[0].notes:
        return "not one part"
    notes = score.tracks[0].notes
    if any(b.start < a.end for a, b in zip(notes, notes[1:])):
        return "overlapping notes (chords or grace notes)"
    if not FOLK_BARS[0] <= score.n_bars <= FOLK_BARS[1]:
        return f"{score.n_bars} bars"
    pitches = [n.pitch for n in notes]
    if min(pitches) < 48 or max(pitches) > 88:
        return "range"
    return None


def build_folk() -> list[dict]:
    """Parse the folk tunes once (about a minute): per source, tunes in ``sha256`` order of their
    number, kept when they are a single line of 8-24 bars on the 16th-note grid."""
    from music21 import corpus

    from capsule_lib.m21 import from_music21

    root = Path(corpus.getComposer("bach")[0]).parents[1]  # music21's corpus folder
    out = []
    for source, wanted in FOLK_SOURCES:
        if "/" in source:  # an ABC opus: tunes by number
            text = (root / f"{source}.abc").read_text(encoding="latin-1")
            numbers = [int(line[2:].strip()) for line in text.splitlines() if line.startswith("X:")]
            candidates = sorted(((source, n) for n in numbers), key=lambda c: _sha(f"{c[0]}:{c[1]}"))
        else:  # a folder of one tune per file
            files = sorted((root / source).glob("*.abc"))
            candidates = sorted(((f"{source}/{f.stem}", None) for f in files), key=lambda c: _sha(c[0]))
        taken = 0
        for path, number in candidates:
            if taken >= wanted:
                break
            try:
                stream = corpus.parse(path, number=number) if number is not None else corpus.parse(path)
                fine = from_music21(stream, resolution=24)
            except Exception:  # malformed ABC: skip
                continue
            if any(n.start % 6 or n.duration % 6 for n in fine.notes):  # off the 16th-note grid (triplets, graces)
                continue
            score = fine.with_resolution(4)
            if _usable(score) is not None:
                continue
            out.append(
                {
                    "name": f"{path}" + (f"#{number}" if number is not None else ""),
                    "title": score.title,
                    "time_signature": list(score.time_signature),
                    "notes": [[n.start, n.pitch, n.duration] for n in score.tracks[0].notes],
                }
            )
            taken += 1
    return out


def load_folk(rebuild: bool = False) -> list[tuple[str, Score]]:
    if rebuild or not FOLK_FILE.is_file():
        tunes = build_folk()
        FOLK_FILE.write_text(
            json.dumps(
                {"resolution": 4, "tempo": FOLK_TEMPO, "sources": [list(s) for s in FOLK_SOURCES], "tunes": tunes},
                indent=None,
                separators=(",", ":"),
            )
            + "\n"
        )
    data = json.loads(FOLK_FILE.read_text())
    out = []
    for t in data["tunes"]:
        notes = tuple(Note(s, p, d, 90) for s, p, d in t["notes"])
        score = Score(
            tracks=(Track(name="melody", notes=notes),),
            tempo=data["tempo"],
            time_signature=tuple(t["time_signature"]),
            resolution=data["resolution"],
            title=t["title"],
        )
        out.append((t["name"], score.with_resolution(24)))
    return out


def melodies(keys: list[int], quick: bool = False, rebuild_folk: bool = False) -> list[tuple[str, Score]]:
    """``(name, melody)`` for every sample and folk tune in every key."""
    base = [(s["name"], cl.load_sample(s["name"])) for s in cl.list_samples()]
    folk = load_folk(rebuild_folk)
    if quick:
        folk = folk[:: max(1, len(folk) // 10)][:10]
    out = []
    for k in keys:
        for name, m in base + folk:
            out.append((f"{name}{k:+d}", cl.transpose(m, k) if k else m))
    return out


# --------------------------------------------------------------------------- figures


def _round_trip(score: Score, folder: Path, name: str) -> Score:
    """The score as its MIDI file reads back (every track)."""
    path = folder / (_sha(name)[:16] + ".mid")
    cl.write_midi(score, path)
    return cl.read_midi(path, track="all")


def figures(score: Score) -> dict:
    parallels, joint = M.voice_motion(M.voice_lines(score))
    return {
        "polyphony": M.polyphony(score),
        "clash": M.clash_rate(score),
        "in_key": M.in_key_rate(score),
        "parallels_n": parallels,
        "joint_moves": joint,
    }


def _extension(out: Score, melody: Score, input_duration: float) -> tuple[Score, Score]:
    """(the extension alone, the prompt) of an extended score read back from MIDI."""
    end = melody.end * out.resolution // melody.resolution
    cut = max(0, end - int(round(input_duration * melody.tempo / 60 * out.resolution)))

    def pick(keep):
        return out.replace(tracks=tuple(t.replace(notes=tuple(n for n in t.notes if keep(n))) for t in out.tracks))

    return pick(lambda n: n.start >= end), pick(lambda n: n.start < end and n.end > cut)


def _gan_extras(out: Score, melody: Score) -> dict:
    from capsule_lib.techniques.gan.voicing import part_range

    kept = out.tracks[0].notes == melody.tracks[0].notes
    in_range = []
    for t in out.tracks[1:]:
        rng = part_range(t.name)
        if rng is not None and t.notes:
            in_range.append((sum(rng[0] <= n.pitch <= rng[1] for n in t.notes), len(t.notes)))
    return {
        "melody_kept": float(kept),
        "in_range_n": sum(a for a, _ in in_range),
        "notes_n": sum(b for _, b in in_range),
        "bass_above": M.above_melody_rate(out, len(out.tracks) - 1, 0),
    }


def run_row(label: str, kind: str, fn, items, folder: Path, seed0: int = 0) -> dict:
    rows, seconds = [], 0.0
    for i, (name, melody) in enumerate(items):
        t0 = time.perf_counter()
        out = fn(melody, seed0 + i)
        seconds += time.perf_counter() - t0
        back = _round_trip(out, folder, f"{label}/{name}")
        if kind == "extend":
            ext, prompt = _extension(back, melody, 10.0)
            if not ext.notes:
                rows.append({"silent": 1.0})
                continue
            r = figures(ext)
            key = M.best_key(prompt)
            r["in_key_prompt"] = M.in_key_rate(ext, key)
            r["register_gap"] = abs(M.mean_pitch(ext) - M.mean_pitch(prompt))
            r["register_kept"] = float(r["register_gap"] <= 12)
            r["silent"] = 0.0
        else:
            r = figures(back)
            if kind == "enhance harmonize":
                r["melody_kept"] = float(back.tracks[0].notes == melody.tracks[0].notes)
            if kind == "accompany":
                r.update(_gan_extras(back, melody))
        rows.append(r)
    return summarise(label, kind, rows, seconds / max(1, len(items)))


def summarise(label: str, kind: str, rows: list[dict], seconds: float = math.nan) -> dict:
    out = {"row": label, "kind": kind, "n": len(rows), "seconds_per_piece": seconds}
    keys = {k for r in rows for k in r} - {"parallels_n", "joint_moves", "in_range_n", "notes_n"}
    for k in sorted(keys):
        vals = [r[k] for r in rows if k in r and not math.isnan(r[k])]
        out[k] = float(np.mean(vals)) if vals else math.nan
    joint = sum(r.get("joint_moves", 0) for r in rows)
    out["parallels"] = 100.0 * sum(r.get("parallels_n", 0) for r in rows) / joint if joint else math.nan
    out["joint_moves"] = joint
    notes = sum(r.get("notes_n", 0) for r in rows)
    if notes:
        out["in_range"] = sum(r.get("in_range_n", 0) for r in rows) / notes
    return out


# --------------------------------------------------------------------------- the rows


VOICES = ("soprano", "alto", "tenor", "bass")


def _parse_satb(path: str) -> dict:
    """One chorale's four voices (parts named Soprano, Alto, Tenor, Bass) as ``(voice, start, pitch,
    duration)`` rows at 4 steps per beat; instrumental parts (which often double a voice) are left out."""
    try:
        from music21 import corpus

        from capsule_lib.m21 import from_music21

        stream = corpus.parse(path)
        parts = {}
        for part in stream.parts:
            name = (part.partName or "").strip().lower()
            for v, voice in enumerate(VOICES):
                if name.startswith(voice) and v not in parts:
                    parts[v] = part
        if len(parts) < 4:
            return {"path": path, "error": f"voices found: {sorted(parts)}"}
        rows = []
        for v, part in parts.items():
            for n in from_music21(part, resolution=4).tracks[0].notes:
                rows.append((v, n.start, n.pitch, n.duration))
        return {"path": path, "notes": np.asarray(sorted(set(rows)), np.int32)}
    except Exception as exc:  # a chorale music21 cannot read: skipped and counted
        return {"path": path, "error": f"{type(exc).__name__}: {exc}"[:200]}


def bach_chorales() -> tuple[list[tuple[str, np.ndarray]], int]:
    """``([(path, notes)], skipped)``: the SATB voices of music21's chorales, parsed once (a few minutes)
    and cached in ``$CAPSULE_HOME/cache/bench/``."""
    from capsule_lib.datasets._corpus import keep_unique, parse_all
    from capsule_lib.datasets.bach import chorale_paths
    from capsule_lib.paths import capsule_home

    cache = capsule_home() / "cache" / "bench" / "chorales-satb-v1.npz"
    if cache.is_file():
        with np.load(cache) as d:
            notes, offsets, paths, skipped = d["notes"], d["offsets"], list(d["paths"]), int(d["skipped"])
        return [(paths[i], notes[offsets[i] : offsets[i + 1]]) for i in range(len(paths))], skipped
    results = parse_all(
        _parse_satb,
        chorale_paths(),
        workers=None,
        max_workers=2,
        desc="chorales (SATB)",
        unit="chorale",
        progress=True,
        chunksize=4,
    )
    kept, skipped, _ = keep_unique(results, "notes")
    cache.parent.mkdir(parents=True, exist_ok=True)
    offsets = np.cumsum([0] + [len(r["notes"]) for r in kept])
    np.savez_compressed(
        cache,
        notes=np.concatenate([r["notes"] for r in kept]),
        offsets=offsets,
        paths=np.array([r["path"] for r in kept]),
        skipped=len(skipped),
    )
    return [(r["path"], r["notes"]) for r in kept], len(skipped)


def bach_row(folder: Path) -> dict:
    """Bach's four voices of every chorale, written as 4-track MIDI files and read back."""
    chorales, skipped = bach_chorales()
    rows = []
    for path, notes in chorales:
        tracks = tuple(
            Track(name=v, program=52, notes=tuple(Note(int(s), int(p), int(d), 90) for t, s, p, d in notes if t == k))
            for k, v in enumerate(VOICES)
        )
        score = Score(tracks=tracks, tempo=100.0, resolution=4, title=path)
        rows.append(figures(_round_trip(score, folder, f"bach/{path}")))
    out = summarise(BACH, "reference", rows)
    out["skipped"] = skipped
    return out


def technique_rows(which: set[str]):
    """``(label, kind, fn(melody, seed) -> Score)`` for every technique x model x setting of the issue."""
    out = []
    if "enhance" in which:
        out.append(("enhance defaults", "enhance defaults", lambda m, s: cl.enhance(m, seed=s, save=False)))
    if "console" in which:  # its own row name: 100 passes make it the slowest row by far
        out.append(
            (
                "enhance console settings (100 iterations, 100 %, 500 notes)",
                "enhance console",
                lambda m, s: cl.enhance(
                    m, sampling_iterations=100, max_remove_pct=100, max_notes_added=500, seed=s, save=False
                ),
            )
        )
    if "enhance" in which:
        out.append(
            ("enhance harmonize", "enhance harmonize", lambda m, s: cl.enhance(m, harmonize=True, seed=s, save=False))
        )
    if "gan" in which:
        for name in ("musegan-chorale", "musegan-quartet", "musegan-renaissance"):
            out.append(
                (f"accompany {name}", "accompany", lambda m, s, n=name: cl.accompany(m, model=n, seed=s, save=False))
            )
    if "extend" in which:
        for sampling in ("topk", "nucleus"):
            out.append(
                (
                    f"extend 20 s, {sampling} (extension alone)",
                    "extend",
                    lambda m, s, k=sampling: cl.extend(m, sampling=k, extension_duration=20.0, seed=s, save=False),
                )
            )
    return out


def _fmt(x, digits=3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _verdict(row: dict) -> str:
    kind = "accompany" if row["kind"] == "accompany" else row["kind"]
    targets = TARGETS.get(kind)
    if not targets:
        return ""
    missed = []
    for key, (lo, hi) in targets.items():
        v = row.get(key, math.nan)
        if isinstance(v, float) and math.isnan(v):
            missed.append(f"{key} n/a")
        elif (lo is not None and v < lo - 1e-9) or (hi is not None and v > hi + 1e-9):
            missed.append(f"{key} {v:.3g}")
    return "met" if not missed else "missed: " + ", ".join(missed)


def table(rows: list[dict]) -> str:
    lines = ["| row | polyphony | clash | in key | parallels /100 | extra | targets |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        extra = []
        if "melody_kept" in r:
            extra.append(f"melody kept {r['melody_kept']:.2f}")
        if "in_range" in r:
            extra.append(f"in range {r['in_range']:.3f}")
        if "bass_above" in r:
            extra.append(f"bass above melody {_fmt(r['bass_above'])}")
        if "in_key_prompt" in r:
            extra.append(
                f"in prompt's key {_fmt(r['in_key_prompt'])}, register kept {_fmt(r.get('register_kept'), 2)} "
                f"(gap {_fmt(r.get('register_gap'), 1)} semitones), silent {_fmt(r.get('silent'), 2)}"
            )
        if r.get("seconds_per_piece") and not math.isnan(r["seconds_per_piece"]):
            extra.append(f"{r['seconds_per_piece']:.2f} s/piece")
        lines.append(
            f"| {r['row']} ({r['n']}) | {_fmt(r.get('polyphony'), 2)} | {_fmt(r.get('clash'))} | "
            f"{_fmt(r.get('in_key'), 2)} | {_fmt(r.get('parallels'), 2)} | {'; '.join(extra)} | {_verdict(r)} |"
        )
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the samples and 10 folk tunes, in one key")
    ap.add_argument("--keys", default="0,4,-5", help="transpositions in semitones, comma-separated")
    ap.add_argument("--rows", default="bach,enhance,console,gan,extend")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--json", help="also write the rows as JSON here")
    ap.add_argument("--midi-dir", help="keep the written MIDI files here (default: a temporary folder)")
    ap.add_argument("--rebuild-folk", action="store_true", help="parse the folk tunes again (music21)")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    which = set(args.rows.split(","))
    keys = [0] if args.quick else [int(k) for k in args.keys.split(",")]
    items = melodies(keys, quick=args.quick, rebuild_folk=args.rebuild_folk)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} ({args.threads} threads), "
        f"python {platform.python_version()}, load average {load:.2f}"
    )
    print(f"melodies: {len(items)} ({len(items) // len(keys)} tunes x keys {keys})", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.midi_dir) if args.midi_dir else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        if "bach" in which:
            rows.append(bach_row(folder))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
        rows.append(
            {
                "row": "console AR-CNN, Ode to Joy (issue 15)",
                "kind": "reference",
                "n": 1,
                "polyphony": CONSOLE["polyphony"],
                "clash": CONSOLE["clash"],
                "in_key": CONSOLE["in_key"],
                "parallels": math.nan,
            }
        )
        for label, kind, fn in technique_rows(which):
            rows.append(run_row(label, kind, fn, items, folder))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    print()
    print(table(rows))
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=float) + "\n")
    return {"rows": rows}


if __name__ == "__main__":
    sys.exit(main() and 0)
