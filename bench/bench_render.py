"""How fast :func:`capsule_lib.synthesize` renders 30 s of music (target: under 1 s).

Builds a four-track score (melody, chords, bass, drums) lasting 30 s, renders it
with each available backend a few times after one warm-up render (SoundFont
loaded, synth cached) and reports the median time and its ratio to real time.
Also times WAV and MP3 encoding of the result.
"""

from __future__ import annotations

import os
import platform
import warnings

from _timing import median_time  # bench/ is on sys.path when a script runs

from capsule_lib import Note, Score, Track, audio

RUNS = 5
RES = 4  # 16th-note steps
TEMPO = 120.0  # 30 s = 60 beats = 15 bars of 4/4


def thirty_seconds() -> Score:
    """A busy, repetitive 15-bar arrangement: 16th melody, block chords, walking bass, rock beat."""
    chords = [(48, 52, 55), (45, 48, 52), (41, 45, 48), (43, 47, 50)]  # C Am F G
    scale = [60, 62, 64, 65, 67, 69, 71, 72]
    melody, harmony, bass, drums = [], [], [], []
    for bar in range(15):
        origin = bar * 16
        root = chords[bar % 4]
        for k in range(16):  # 16th notes
            melody.append(Note(origin + k, scale[(bar + k * 3) % 8], 1, 80 + (k % 4) * 10))
        for beat in (0, 8):
            for pitch in root:
                harmony.append(Note(origin + beat, pitch + 12, 8, 70))
        for beat in range(4):
            bass.append(Note(origin + beat * 4, root[0] - 12 + (0, 7, 12, 7)[beat], 4, 90))
        for k in range(0, 16, 2):
            drums.append(Note(origin + k, 42, 1, 70))
        drums += [
            Note(origin, 36, 2, 110),
            Note(origin + 8, 36, 2, 110),
            Note(origin + 4, 38, 2, 100),
            Note(origin + 12, 38, 2, 100),
        ]
    return Score(
        tracks=(
            Track("melody", 0, False, tuple(melody)),
            Track("chords", 48, False, tuple(harmony)),
            Track("bass", 33, False, tuple(bass)),
            Track("drums", 0, True, tuple(drums)),
        ),
        tempo=TEMPO,
        resolution=RES,
        title="bench",
    )


def timed(fn, runs: int = RUNS) -> float:
    """Median of ``runs`` calls after a warm-up (which loads the SoundFont / builds wavetables)."""
    return median_time(fn, runs)


def main() -> None:
    score = thirty_seconds()
    music = score.duration_seconds
    n_notes = sum(len(t.notes) for t in score.tracks)
    print(
        f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"score: {len(score.tracks)} tracks, {n_notes} notes, {music:.1f} s of music "
        f"(+{audio.TAIL_SECONDS:g} s tail), 44.1 kHz stereo"
    )
    print("| backend | render median (s) | x real time | WAV encode (s) | MP3 encode (s) | target < 1 s |")
    print("|---|---|---|---|---|---|")
    previous = os.environ.get("CAPSULE_AUDIO_BACKEND")
    try:
        for backend in ("fluidsynth", "builtin"):
            os.environ["CAPSULE_AUDIO_BACKEND"] = backend
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    samples = audio.synthesize(score)
            except Exception as exc:  # noqa: BLE001 - a missing backend is a result, not a crash
                print(f"| {backend} | unavailable: {exc} | - | - | - | - |")
                continue
            render = timed(lambda: audio.synthesize(score))
            wav = timed(lambda: audio.wav_bytes(samples, 44100), runs=3)
            mp3 = timed(lambda: audio.mp3_bytes(samples, 44100), runs=3)
            print(
                f"| {backend} | {render:.3f} | {music / render:.0f}x | {wav:.3f} | {mp3:.3f} | "
                f"{'met' if render < 1.0 else 'MISSED'} |"
            )
    finally:
        if previous is None:
            os.environ.pop("CAPSULE_AUDIO_BACKEND", None)
        else:
            os.environ["CAPSULE_AUDIO_BACKEND"] = previous


if __name__ == "__main__":
    main()
