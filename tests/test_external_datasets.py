"""LPD-5 (pypianoroll .npz) and MIDI-folder loaders: exact notes from small hand-made files."""

import mido
import numpy as np
import pypianoroll
import pytest

from capsule_lib.datasets import external
from capsule_lib.datasets.external import (
    TRACKS,
    category_of_program,
    load_lpd5,
    load_midi_folder,
    roll_to_notes,
    skyline,
)
from capsule_lib.datasets.multitrack import N_PITCHES, SAMPLE_STEPS, split_of
from capsule_lib.errors import CapsuleError

MSD_ID = "TRAAAGR128F425B14B"


@pytest.fixture(autouse=True)
def _home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("CAPSULE_HOME", str(tmp_path_factory.mktemp("ext_home")))


def rows(ds_piece, track=None):
    n = ds_piece.notes
    return sorted(tuple(int(x) for x in r) for r in (n if track is None else n[n[:, 0] == track]))


def write_lpd(path, tracks, *, steps=96, downbeat=(0,), binary=True):
    """An LPD-5 style file: ``tracks`` = [(name, program, is_drum, [(start, pitch, length) at 24/beat])]."""
    made = []
    for name, program, is_drum, notes in tracks:
        roll = np.zeros((steps, 128), bool if binary else np.uint8)
        for s, p, d in notes:
            roll[s : s + d, p] = True if binary else 100
        cls = pypianoroll.BinaryTrack if binary else pypianoroll.StandardTrack
        made.append(cls(name=name, program=program, is_drum=is_drum, pianoroll=roll))
    beats = np.zeros(steps, bool)
    beats[list(downbeat)] = True
    mt = pypianoroll.Multitrack(resolution=24, downbeat=beats, tracks=made)
    path.parent.mkdir(parents=True, exist_ok=True)
    pypianoroll.save(path, mt)
    back = pypianoroll.load(path)  # the fixture is the real format
    assert back.resolution == 24 and [t.name for t in back.tracks] == [t[0] for t in tracks]
    assert all(np.array_equal(a.pianoroll, b.pianoroll) for a, b in zip(back.tracks, made))
    return path


def write_mid(path, instruments, tpb=96):
    """A type-1 MIDI file: ``instruments`` = [(program, is_drum, [(start, pitch, length) in beats/4])]."""
    mid = mido.MidiFile(type=1, ticks_per_beat=tpb)
    q = tpb // 4
    melodic = iter([0, 1, 2, 3, 4, 5, 6, 7, 8])
    for program, is_drum, notes in instruments:
        ch = 9 if is_drum else next(melodic)
        ev = [(0, 1, mido.Message("program_change", channel=ch, program=program))]
        for s, p, d in notes:
            ev.append((s * q, 1, mido.Message("note_on", channel=ch, note=p, velocity=90)))
            ev.append(((s + d) * q, 0, mido.Message("note_off", channel=ch, note=p, velocity=0)))
        track, last = mido.MidiTrack(), 0
        for tick, _, msg in sorted(ev, key=lambda e: (e[0], e[1])):
            track.append(msg.copy(time=tick - last))
            last = tick
        mid.tracks.append(track)
    path.parent.mkdir(parents=True, exist_ok=True)
    mid.save(str(path))
    return path


# A C major chord on the piano under a guitar line, a strings note on top near the end,
# a high bass note that must not join the melody, two drum hits.  Times at 24 per beat.
SONG = [
    ("Drums", 0, True, [(0, 36, 2), (24, 38, 2)]),
    ("Piano", 0, False, [(0, 60, 96), (0, 64, 96), (0, 67, 96)]),
    ("Guitar", 24, False, [(0, 76, 24), (24, 74, 24), (72, 55, 24)]),
    ("Bass", 32, False, [(0, 36, 48), (48, 88, 12)]),
    ("Strings", 48, False, [(84, 83, 12)]),
]
SONG_NOTES = [
    (0, 0, 76, 4),
    (0, 4, 74, 4),
    (0, 8, 67, 6),
    (0, 14, 83, 2),  # skyline of piano, guitar, strings
    (1, 0, 36, 1),
    (1, 4, 38, 1),  # drums keep GM keys, >= 1 step
    (2, 0, 60, 16),
    (2, 0, 64, 16),
    (2, 0, 67, 16),  # piano keeps the chord
    (3, 0, 76, 4),
    (3, 4, 74, 4),
    (3, 12, 55, 4),  # guitar
    (4, 0, 36, 8),
    (4, 8, 88, 2),  # bass: not in the melody
    (5, 14, 83, 2),  # strings
]


def test_lpd5_song_converts_to_exact_notes(tmp_path):
    write_lpd(tmp_path / "lpd" / "song.npz", SONG)
    ds = load_lpd5(tmp_path / "lpd", progress=False)
    assert ds.spec.name == "lpd5" and ds.spec.tracks == TRACKS
    assert ds.spec.tracks == ("melody", "drums", "piano", "guitar", "bass", "strings")
    assert ds.spec.programs == (80, 0, 0, 25, 33, 48)
    assert ds.spec.is_drum == (False, True, False, False, False, False)
    [piece] = ds.pieces
    assert piece.path == "song.npz" and piece.title == "song" and piece.split == split_of("song.npz")
    assert piece.notes.dtype == np.int32 and piece.notes.shape == (len(SONG_NOTES), 4)
    assert rows(piece) == sorted(SONG_NOTES)
    assert ds.skipped == [] and ds.duplicates == []
    assert ds.source.startswith("LPD-5 (1 files under ") and str((tmp_path / "lpd").resolve()) in ds.source


def test_24_to_4_per_beat_rounding_and_velocity_rolls(tmp_path):
    # one beat; 1.25-1.75 beats; a 3-step and a 1-step blip (>= 1 step); two runs 1 step apart
    got = roll_to_notes(np.r_[0:24, 30:42, 50:53, 70], 60, 24).tolist()
    assert got == [[0, 60, 4], [5, 60, 2], [8, 60, 1], [12, 60, 1]]
    assert roll_to_notes(np.r_[0:22, 23:48], 60, 24).tolist() == [[0, 60, 4], [4, 60, 4]]
    # rounding makes two same-pitch notes overlap: they are merged on the piano track
    write_lpd(
        tmp_path / "v.npz", [("Piano", 0, False, [(0, 62, 24), (30, 62, 12), (45, 62, 1), (47, 62, 13)])], binary=False
    )
    [piece] = load_lpd5(tmp_path / "v.npz", progress=False).pieces
    assert rows(piece, 2) == [(2, 0, 62, 4), (2, 5, 62, 2), (2, 8, 62, 2)]
    assert rows(piece, 0) == [(0, 0, 62, 4), (0, 5, 62, 2), (0, 8, 62, 2)]


def test_pickup_is_shifted_so_the_first_downbeat_is_a_bar_line(tmp_path):
    write_lpd(tmp_path / "p.npz", [("Piano", 0, False, [(0, 72, 24), (24, 74, 24)])], downbeat=(24,))
    [piece] = load_lpd5(tmp_path, progress=False).pieces
    assert rows(piece, 2) == [(2, 12, 72, 4), (2, 16, 74, 4)]


def test_skyline_rule():
    notes = np.array([(2, 0, 60, 8), (3, 0, 67, 4), (3, 4, 67, 4), (4, 0, 100, 8), (5, 6, 120, 2), (1, 0, 99, 8)])
    # the re-struck 67 starts a new note; the lower 60 never shows; bass, drums, out-of-range ignored
    assert skyline(notes).tolist() == [[0, 67, 4], [4, 67, 4]]
    assert skyline(np.array([(2, 0, 60, 4), (2, 6, 62, 2)])).tolist() == [[0, 60, 4], [6, 62, 2]]
    assert skyline(np.zeros((0, 4), int)).shape == (0, 3)


def test_bad_files_are_skipped_with_reasons_and_the_rest_load(tmp_path):
    root = tmp_path / "lpd"
    write_lpd(root / "good.npz", SONG)
    write_lpd(root / "drums_only.npz", [("Drums", 0, True, [(0, 36, 2)]), ("Bass", 32, False, [(0, 40, 24)])])
    (root / "sub").mkdir()
    (root / "sub" / "garbage.npz").write_bytes(b"this is not a zip file")
    np.savez(root / "plain.npz", x=np.arange(3))  # a valid npz, but not pypianoroll's layout
    ds = load_lpd5(root, progress=False)
    assert [p.path for p in ds.pieces] == ["good.npz"]
    reasons = dict(ds.skipped)
    assert set(reasons) == {"drums_only.npz", "sub/garbage.npz", "plain.npz"}
    assert "melody" in reasons["drums_only.npz"] and "info.json" in reasons["plain.npz"]
    assert "not an .npz file" in reasons["sub/garbage.npz"]
    assert all(r and "\n" not in r for r in reasons.values())


def test_missing_or_empty_folder_raises(tmp_path):
    with pytest.raises(CapsuleError, match="does not exist"):
        load_lpd5(tmp_path / "nowhere", progress=False)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hi")
    with pytest.raises(CapsuleError, match=r"no \.npz files under .*empty"):
        load_lpd5(tmp_path / "empty", progress=False)
    with pytest.raises(CapsuleError, match=r"no \.mid/\.midi files under .*empty"):
        load_midi_folder(tmp_path / "empty", progress=False)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.npz").write_bytes(b"junk")
    with pytest.raises(CapsuleError, match="none of the 1 LPD-5 files"):
        load_lpd5(tmp_path / "bad", progress=False)
    with pytest.raises(CapsuleError, match="limit"):
        load_lpd5(tmp_path / "bad", limit=0, progress=False)


def test_second_call_comes_from_the_cache_until_the_folder_changes(tmp_path, monkeypatch):
    root = tmp_path / "lpd"
    write_lpd(root / "a.npz", SONG)
    write_lpd(root / "b.npz", [("Piano", 0, False, [(0, 65, 48)])])
    first = load_lpd5(root, progress=False)
    assert first.cache_path is not None and first.cache_path.exists()

    def boom(path):
        raise AssertionError("re-read " + path)

    monkeypatch.setattr(external, "_parse_lpd5", boom)
    again = load_lpd5(root, progress=False)
    assert [(p.path, p.title, p.split) for p in again.pieces] == [(p.path, p.title, p.split) for p in first.pieces]
    assert all(np.array_equal(a.notes, b.notes) for a, b in zip(again.pieces, first.pieces))
    assert again.spec == first.spec and again.source == first.source and again.cache_path == first.cache_path
    write_lpd(root / "c.npz", [("Piano", 0, False, [(0, 66, 48)])])  # a new file: a new cache key
    with pytest.raises(AssertionError, match="re-read"):
        load_lpd5(root, progress=False)


def _names_in(split, n, prefix):
    names, i = [], 0
    while len(names) < n:
        name = f"{prefix}{i}.npz"
        if split_of(name) == split:
            names.append(name)
        i += 1
    return names


def test_splits_duplicates_and_samples(tmp_path):
    root = tmp_path / "lpd"
    names = _names_in("train", 2, "song") + _names_in("test", 1, "song")
    for k, name in enumerate(names):  # 16 beats of a walking piano line: one 4-bar sample
        write_lpd(root / name, [("Piano", 0, False, [(24 * b, 60 + k + b % 5, 24) for b in range(16)])], steps=384)
    write_lpd(root / "zz_copy.npz", [("Piano", 0, False, [(24 * b, 60 + b % 5, 24) for b in range(16)])], steps=384)
    write_lpd(root / "A" / MSD_ID / "v1.npz", [("Piano", 0, False, [(0, 70, 24)])])
    write_lpd(root / "A" / MSD_ID / "v2.npz", [("Piano", 0, False, [(0, 71, 24)])])
    ds = load_lpd5(root, progress=False, workers=1)
    by_path = {p.path: p for p in ds.pieces}
    for name in names:
        assert by_path[name].split == split_of(name)
    assert ds.duplicates == [("zz_copy.npz", names[0])]
    assert by_path[f"A/{MSD_ID}/v1.npz"].split == by_path[f"A/{MSD_ID}/v2.npz"].split == split_of(MSD_ID)
    train, test = ds.samples("train"), ds.samples("test")
    assert train.shape[1:] == test.shape[1:] == (6, SAMPLE_STEPS, N_PITCHES) and train.dtype == bool
    assert len(train) >= 2 and len(test) >= 1
    assert ds.summary()["pieces"] == len(ds.pieces) == 5
    assert load_lpd5(root, progress=False, limit=2).source.startswith("LPD-5 (2 files")


def test_gm_program_categories():
    assert category_of_program(0, True) == 1
    assert [category_of_program(p, False) for p in (0, 7, 8, 19, 23)] == [2] * 5
    assert [category_of_program(p, False) for p in (24, 25, 31)] == [3] * 3
    assert [category_of_program(p, False) for p in (32, 33, 39)] == [4] * 3
    assert [category_of_program(p, False) for p in (40, 48, 56, 65, 73, 80, 127)] == [5] * 7


def test_midi_folder_groups_instruments_by_program(tmp_path):
    root = tmp_path / "midi"
    write_mid(
        root / "pop" / "song.mid",
        [
            (0, False, [(0, 60, 16), (0, 64, 16)]),  # piano chord
            (19, False, [(0, 67, 16)]),  # church organ -> piano
            (25, False, [(0, 76, 4), (4, 74, 4)]),  # steel guitar line
            (33, False, [(0, 36, 16)]),  # finger bass
            (0, True, [(0, 36, 1), (4, 42, 1)]),  # drums: kick, closed hat
            (56, False, [(12, 84, 4)]),  # trumpet -> strings
        ],
    )
    write_mid(root / "drums.midi", [(0, True, [(0, 36, 1)])])
    (root / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01")
    ds = load_midi_folder(root, progress=False)
    assert ds.spec.name == "midi" and ds.spec.tracks == TRACKS
    [piece] = ds.pieces
    assert piece.path == "pop/song.mid" and piece.split == split_of("pop/song.mid")
    assert rows(piece) == sorted(
        [
            (0, 0, 76, 4),
            (0, 4, 74, 4),
            (0, 8, 67, 4),
            (0, 12, 84, 4),
            (1, 0, 36, 1),
            (1, 4, 42, 1),
            (2, 0, 60, 16),
            (2, 0, 64, 16),
            (2, 0, 67, 16),
            (3, 0, 76, 4),
            (3, 4, 74, 4),
            (4, 0, 36, 16),
            (5, 12, 84, 4),
        ]
    )
    reasons = dict(ds.skipped)
    assert set(reasons) == {"drums.midi", "broken.mid"}
    assert "melody" in reasons["drums.midi"] and "corrupt" in reasons["broken.mid"]
    assert ds.source.startswith("MIDI (3 files under ")


@pytest.mark.slow
def test_a_gan_trains_on_a_midi_folder_and_writes_a_drum_track(tmp_path, one_torch_thread):
    """End to end: `capsule train gan --dataset FOLDER` data -> a 6-track model with drums."""
    from capsule_lib import CapsuleError, load_sample, set_instrument
    from capsule_lib.techniques.gan import accompany, train_gan

    root = tmp_path / "band"
    for i in range(12):  # enough songs for every split
        bars = [(b * 16 + s, 60 + (b + i) % 5 + s % 3, 4) for b in range(8) for s in (0, 4, 8, 12)]
        write_mid(
            root / f"song{i}.mid",
            [
                (0, False, bars),
                (33, False, [(b * 16, 36 + (b + i) % 5, 16) for b in range(8)]),
                (0, True, [(b * 16 + s, 36 if s % 8 == 0 else 38, 1) for b in range(8) for s in (0, 4, 8, 12)]),
                (48, False, [(b * 16, 67 + (b + i) % 3, 16) for b in range(8)]),
            ],
        )
    card = train_gan(
        "band-gan",
        "musegan",
        str(root),
        epochs=1,
        batch_size=4,
        max_steps_per_epoch=2,
        progress=False,
        model_config={"z_dim": 4, "width": 8, "critic_width": 8},
    )
    assert card.hyperparameters["genre"]["tracks"] == list(TRACKS)
    out = accompany(load_sample("ode_to_joy"), model="band-gan", seed=1, save=False)
    assert [t.name for t in out.tracks[1:]] == list(TRACKS[1:])
    drums = out.tracks[1]
    assert drums.is_drum and not any(t.is_drum for t in out.tracks[2:])
    with pytest.raises(CapsuleError, match="drum"):
        set_instrument(out, "drums", 5)
    assert set_instrument(out, "bass", 34).tracks[4].program == 34
