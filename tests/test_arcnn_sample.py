import math
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from capsule_lib.datasets.bach import PITCH_HIGH, PITCH_LOW
from capsule_lib.errors import CapsuleError
from capsule_lib.score import Note, Score, Track
from capsule_lib.store import CompositionStore, save_composition
from capsule_lib.techniques.arcnn.model import ArcnnConfig, ArcnnUNet
from capsule_lib.techniques.arcnn.sample import enhance, enhance_notes


class Flipper(nn.Module):
    """A stand-in network that wants every silent cell on and every sounding cell off."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))
        self.name = "flipper"

    def forward(self, x):
        return 8.0 - 16.0 * x[:, 0]


class WantsHigh(nn.Module):
    """A consistent stand-in: every cell at or above MIDI 75 belongs, everything below does not
    (so it adds high notes and removes the test melodies' notes, whatever it is shown)."""

    def __init__(self, low: int = 75):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))
        self.name = "wants-high"
        self.low = low - PITCH_LOW

    def forward(self, x):
        out = torch.full(x[:, 0].shape, -8.0)
        out[..., self.low :] = 8.0
        return out


class Everywhere(nn.Module):
    """Wants a note in every cell (so only the rules decide what gets added)."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))
        self.name = "everywhere"

    def forward(self, x):
        return torch.full(x[:, 0].shape, 8.0)


class Noisy(nn.Module):
    """A fast stand-in with mixed opinions: a fixed random field, leaning against sounding cells."""

    def __init__(self, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("field", torch.randn(128, 64, generator=g) * 2.0 - 1.0)
        self.dummy = nn.Parameter(torch.zeros(1))
        self.name = "noisy"

    def forward(self, x):
        return self.field - 1.5 * x[:, 0]


NOISY = Noisy()


def tiny_model(seed: int = 0) -> ArcnnUNet:
    torch.manual_seed(seed)
    return ArcnnUNet(ArcnnConfig(base_channels=4, depth=2)).eval()


TINY = tiny_model()


def melody(n_bars: int = 8, resolution: int = 4, seed: int = 0, **kw) -> Score:
    rng = np.random.default_rng(seed)
    notes, t, beat = [], 0, resolution
    while t < n_bars * 4 * beat:
        d = int(rng.choice([beat // 2 or 1, beat, 2 * beat]))
        notes.append(Note(t, int(rng.integers(60, 73)), d, int(rng.integers(60, 110))))
        t += d
    return Score.from_notes(notes, resolution=resolution, **kw)


def diff(before: Score, after: Score, track: int = 0) -> tuple[int, int]:
    """(input notes missing from the output, output notes not in the input), as multisets."""
    a, b = Counter(before.tracks[track].notes), Counter(after.tracks[track].notes)
    return sum((a - b).values()), sum((b - a).values())


def test_output_keeps_score_properties_and_only_adds_or_removes_whole_notes():
    src = melody(resolution=24, tempo=90, time_signature=(3, 4), title="tune")
    out = enhance(src, TINY, seed=1, save=False)
    assert (out.resolution, out.tempo, out.time_signature, out.title) == (24, 90, (3, 4), "tune")
    assert len(out.tracks) == 1
    kept = set(out.tracks[0].notes) & set(src.tracks[0].notes)
    removed, added = diff(src, out)
    assert removed + added > 0
    # every kept input note is untouched: same start, length, pitch and velocity on the input grid
    assert len(kept) == len(src.tracks[0].notes) - removed
    for n in out.tracks[0].notes:
        if n not in kept:
            assert n.start % 6 == 0 and n.duration % 6 == 0  # added notes sit on the 16th grid


@given(
    st.integers(1, 6),
    st.floats(0, 100),
    st.integers(0, 30),
    st.floats(0, 4),
    st.integers(0, 2**32),
    st.integers(1, 20),
    st.booleans(),
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_caps_are_never_exceeded(iterations, pct, max_add, risk, seed, n_bars, flip):
    src = melody(n_bars=n_bars, seed=seed % 1000)
    model = Flipper() if flip else NOISY
    out = enhance(
        src,
        model,
        sampling_iterations=iterations,
        max_remove_pct=pct,
        max_notes_added=max_add,
        creative_risk=risk,
        seed=seed,
        save=False,
    )
    removed, added = diff(src, out)
    assert removed <= math.floor(pct / 100 * len(src.tracks[0].notes) + 1e-9)
    assert added <= max_add


@pytest.mark.parametrize("pct,max_add", [(25, 7), (50, 0), (0, 13), (100, 17)])
def test_caps_are_reached_exactly_when_the_model_wants_more(pct, max_add):
    src = melody(n_bars=8)
    n = len(src.tracks[0].notes)
    out = enhance(
        src,
        WantsHigh(),
        sampling_iterations=100,
        max_remove_pct=pct,
        max_notes_added=max_add,
        creative_risk=0.5,
        seed=3,
        save=False,
    )
    removed, added = diff(src, out)
    assert removed == math.floor(pct / 100 * n)
    assert added == max_add


def test_same_seed_same_output_and_other_seeds_differ():
    src = melody()
    a = enhance(src, TINY, seed=42, save=False)
    b = enhance(src, TINY, seed=42, save=False)
    assert a == b
    outs = {enhance(src, NOISY, seed=s, save=False).tracks[0].notes for s in range(4)}
    assert len(outs) > 1


def test_zero_creative_risk_is_deterministic_without_a_seed():
    src = melody()
    assert enhance(src, NOISY, creative_risk=0, save=False) == enhance(src, NOISY, creative_risk=0, save=False)


def test_long_melody_is_processed_in_seamless_windows():
    src = melody(n_bars=32, seed=5)
    out = enhance(
        src,
        WantsHigh(),
        sampling_iterations=20,
        max_remove_pct=30,
        max_notes_added=200,
        creative_risk=0.7,
        seed=0,
        save=False,
    )
    notes = out.tracks[0].notes
    # nothing duplicated: no two notes share a start and pitch, no same-pitch overlap
    assert len({(n.start, n.pitch) for n in notes}) == len(notes)
    by_pitch = {}
    for n in sorted(notes):
        prev = by_pitch.get(n.pitch)
        assert prev is None or prev.end <= n.start, (prev, n)
        by_pitch[n.pitch] = n
    # every 8-bar stretch was enhanced (additions and removals spread across windows)
    added = Counter(n.start // 128 for n in set(notes) - set(src.tracks[0].notes))
    removed = Counter(n.start // 128 for n in set(src.tracks[0].notes) - set(notes))
    assert all(added[k] > 0 for k in range(4)) and all(removed[k] > 0 for k in range(4))
    # nothing added after the melody's last bar
    assert out.end <= -(-src.end // 64) * 64


def test_window_regions_partition_the_melody():
    rng = np.random.default_rng(0)
    notes = np.array([[t, 60 + int(rng.integers(0, 12)), 2] for t in range(0, 600, 2)])
    res = enhance_notes(
        Flipper(), notes, sampling_iterations=2, max_removed=50, max_added=50, rng=np.random.default_rng(0)
    )
    regions = [(lo, hi) for _, lo, hi in res.per_window]
    assert regions[0][0] == 0 and regions[-1][1] == 600
    assert all(a[1] == b[0] for a, b in zip(regions, regions[1:]))


def test_harmonize_keeps_the_melody_and_writes_voices_beneath_it():
    src = melody(seed=2)
    out = enhance(
        src,
        Everywhere(),
        sampling_iterations=6,
        max_remove_pct=100,
        max_notes_added=60,
        harmonize=True,
        seed=0,
        save=False,
    )
    assert out.tracks[0] == src.tracks[0]
    assert [t.name for t in out.tracks] == ["melody", "harmony"]
    harmony = out.tracks[1].notes
    assert 0 < len(harmony) <= 60
    for h in harmony:
        sounding = [m.pitch for m in src.tracks[0].notes if m.start < h.end and m.end > h.start]
        assert sounding and h.pitch < min(sounding)


def test_harmonize_with_a_trained_like_model_never_removes_melody_notes():
    src = melody(seed=4)
    out = enhance(
        src,
        Flipper(),
        sampling_iterations=10,
        max_remove_pct=100,
        max_notes_added=30,
        harmonize=True,
        seed=0,
        save=False,
    )
    assert out.tracks[0] == src.tracks[0]


def test_notes_outside_the_model_range_are_kept_unchanged():
    base = melody()
    extra = (Note(0, 10, 8), Note(16, 120, 4), Note(40, PITCH_LOW - 1, 4))
    src = base.with_track(0, base.tracks[0].replace(notes=base.tracks[0].notes + extra))
    out = enhance(src, Flipper(), sampling_iterations=30, max_remove_pct=100, max_notes_added=5, seed=0, save=False)
    for n in extra:
        assert n in out.tracks[0].notes
    assert all(PITCH_LOW <= n.pitch <= PITCH_HIGH for n in set(out.tracks[0].notes) - set(src.tracks[0].notes))


def test_other_tracks_are_carried_over():
    base = melody()
    bass = Track(name="bass", program=32, notes=(Note(0, 40, 16),))
    src = base.replace(tracks=base.tracks + (bass,))
    out = enhance(src, NOISY, seed=0, save=False)
    assert out.tracks[1] == bass


def test_saves_a_composition_with_parameters_and_parent():
    src = melody()
    parent = save_composition(src, "import", title="my tune")
    out, comp = enhance(src, TINY, seed=9, parent=parent.id, return_composition=True)
    assert comp.technique == "arcnn" and comp.parent == parent.id and comp.model == "custom"
    assert comp.parameters["seed"] == 9 and comp.parameters["sampling_iterations"] == 12
    stored = CompositionStore().load(comp.id)
    assert stored.tracks[0].notes == out.tracks[0].notes
    # seed=None still records the seed used, which reproduces the output
    out2, comp2 = enhance(src, NOISY, return_composition=True)
    assert comp2.model == "noisy"
    assert enhance(src, NOISY, seed=comp2.parameters["seed"], save=False) == out2
    assert enhance(src, NOISY, seed=1, save=False, return_composition=True)[1] is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sampling_iterations": 0},
        {"sampling_iterations": 101},
        {"sampling_iterations": 2.5},
        {"sampling_iterations": True},
        {"max_remove_pct": -1},
        {"max_remove_pct": 100.5},
        {"max_remove_pct": float("nan")},
        {"max_notes_added": -1},
        {"max_notes_added": 1001},
        {"max_notes_added": "5"},
        {"creative_risk": -0.1},
        {"creative_risk": 4.5},
        {"seed": -1},
        {"seed": "abc"},
        {"seed": 2**64},
        {"harmonize": "yes"},
        {"track": 3},
        {"track": "drums"},
    ],
)
def test_bad_parameters_raise(kwargs):
    with pytest.raises(CapsuleError):
        enhance(melody(), NOISY, save=False, **kwargs)


def test_bad_inputs_raise():
    with pytest.raises(CapsuleError, match="Score"):
        enhance([Note(0, 60, 4)], TINY, save=False)
    with pytest.raises(CapsuleError, match="no notes"):
        enhance(Score.from_notes([]), TINY, save=False)
    with pytest.raises(CapsuleError, match="no tracks"):
        enhance(Score(), TINY, save=False)
    with pytest.raises(CapsuleError, match="pitch range"):
        enhance(Score.from_notes([(0, 100, 4), (4, 20, 4)]), TINY, save=False)
    drums = Score(tracks=(Track(name="drums", is_drum=True, notes=(Note(0, 36, 1),)),))
    with pytest.raises(CapsuleError, match="drum"):
        enhance(drums, TINY, save=False)
    with pytest.raises(CapsuleError, match="no model"):
        enhance(melody(), "no-such-model", save=False)
    with pytest.raises(CapsuleError, match="model must be"):
        enhance(melody(), 42, save=False)
