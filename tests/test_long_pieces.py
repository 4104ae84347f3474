"""Long pieces and busy machines (issue 18 item 9), by properties that do not need a clock.

Speed itself is measured in ``bench/bench_long.py`` and ``bench/bench_contention.py``
(figures in ``BENCHMARKS.md``).  Here: the faster code computes exactly what the slower
code did, a progress bar appears for long calls, and torch gets one thread per free core.
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import capsule_lib as cl
from capsule_lib import Note, Score, Track, threads
from capsule_lib.techniques import _common
from capsule_lib.techniques.arcnn import sample as arcnn_sample
from capsule_lib.techniques.arcnn.model import ArcnnConfig, ArcnnUNet
from capsule_lib.techniques.transformer import tokens

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def medley(bars: int, resolution: int = 24) -> Score:
    rng = np.random.default_rng(bars)
    notes, at = [], 0
    while at < bars * 4 * resolution:
        d = int(rng.choice([6, 12, 24]))
        notes.append(Note(at, int(rng.integers(55, 80)), d, 90))
        at += d
    return Score(tracks=(Track(name="melody", notes=tuple(notes)),), tempo=100.0, resolution=resolution)


# -- the tempo map: linear encoding, the same floats ----------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 5000), st.floats(4, 400)), max_size=40),
    st.floats(20, 300),
    st.integers(1, 96),
    st.lists(st.floats(0, 6000), min_size=1, max_size=30),
)
def test_the_tempo_map_gives_exactly_step_to_seconds(changes, tempo, resolution, steps):
    score = Score(
        tracks=(Track(notes=(Note(0, 60, 1),)),),
        tempo=tempo,
        resolution=resolution,
        tempo_changes=tuple(sorted(changes, key=lambda c: c[0])),
    )
    at = score.tempo_map()
    for step in steps + [s for s, _ in changes] + [0]:
        assert at(step) == score.step_to_seconds(step)  # bit for bit, not approximately


def test_unsorted_tempo_changes_keep_their_old_meaning():
    score = Score(tracks=(Track(notes=(Note(0, 60, 1),)),), tempo_changes=((96, 60.0), (48, 90.0)))
    at = score.tempo_map()
    assert [at(s) for s in (0, 50, 100)] == [score.step_to_seconds(s) for s in (0, 50, 100)]


def test_encoding_uses_the_tempo_map_and_matches_the_per_step_sums(monkeypatch):
    piece = medley(64)
    piece = piece.replace(tempo_changes=tuple((1 + 7 * k, 90.0 + k % 20) for k in range(piece.end // 7)))
    assert len(piece.tempo_changes) > 800
    now = tokens.encode(piece)
    monkeypatch.setattr(Score, "tempo_map", lambda self: self.step_to_seconds)  # the old way, per step
    assert tokens.encode(piece) == now

    def quadratic(self, step):
        raise AssertionError("encode summed the tempo changes again for a step")

    monkeypatch.undo()
    monkeypatch.setattr(Score, "step_to_seconds", quadratic)
    assert tokens.encode(piece) == now


# -- the AR-CNN's windows: the same result, without the loop over every note ----------------------------


def _old_render(notes, alive, w0):
    roll = np.zeros((arcnn_sample.WINDOW_STEPS, arcnn_sample.N_PITCHES), dtype=bool)
    for (s, p, d), ok in zip(notes, alive):
        if (
            ok
            and arcnn_sample.PITCH_LOW <= p <= arcnn_sample.PITCH_HIGH
            and s < w0 + arcnn_sample.WINDOW_STEPS
            and s + d > w0
        ):
            roll[max(s - w0, 0) : min(s + d - w0, arcnn_sample.WINDOW_STEPS), p - arcnn_sample.PITCH_LOW] = True
    return roll


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 600), st.integers(0, 127), st.integers(1, 200)), max_size=60),
    st.integers(0, 500),
    st.randoms(),
)
def test_window_rendering_matches_the_loop_over_every_note(rows, w0, rnd):
    notes = np.asarray(rows, dtype=np.int64).reshape(-1, 3)
    alive = np.array([rnd.random() < 0.8 for _ in rows], dtype=bool)
    assert np.array_equal(arcnn_sample._render(notes, alive, w0), _old_render(notes, alive, w0))


def test_a_long_enhance_gives_the_same_notes_as_before(monkeypatch):
    torch.manual_seed(0)
    tiny = ArcnnUNet(ArcnnConfig(base_channels=4, depth=1)).eval()  # the sampler is under test, not the network
    piece = medley(32)
    now = cl.enhance(piece, model=tiny, save=False, seed=3, sampling_iterations=3, max_notes_added=100, progress=False)
    monkeypatch.setattr(arcnn_sample, "_render", _old_render)
    before = cl.enhance(
        piece, model=tiny, save=False, seed=3, sampling_iterations=3, max_notes_added=100, progress=False
    )
    assert now.tracks[0].notes == before.tracks[0].notes
    assert now.tracks[0].notes != piece.tracks[0].notes  # it did enhance


# -- progress bars ------------------------------------------------------------------------------------


@pytest.fixture
def no_delay(monkeypatch):
    monkeypatch.setattr(_common, "PROGRESS_DELAY_S", 0.0)


def test_enhance_shows_a_progress_bar_over_its_windows(capsys, no_delay):
    torch.manual_seed(0)
    tiny = ArcnnUNet(ArcnnConfig(base_channels=4, depth=1)).eval()
    cl.enhance(medley(40), model=tiny, save=False, seed=0, sampling_iterations=1, progress=True)
    err = capsys.readouterr().err
    assert "enhancing" in err and "window" in err and "/9" in err  # 40 bars: 9 windows of 8 bars hopping by 4


def test_extend_shows_a_progress_bar_over_the_seconds(capsys, no_delay):
    from capsule_lib.techniques.transformer.model import TransformerConfig, TransformerXL

    torch.manual_seed(0)
    tiny = TransformerXL(TransformerConfig(d_model=16, n_heads=2, n_layers=1, d_ff=32, segment_len=16, mem_len=16))
    cl.extend(medley(4), model=tiny.eval(), save=False, seed=0, extension_duration=2.0, progress=True)
    err = capsys.readouterr().err
    assert "extending" in err and "/2" in err


def test_accompany_shows_a_bar_while_its_generator_runs(capsys, no_delay, monkeypatch):
    from capsule_lib.techniques.gan import sample

    real = sample.generate_samples

    def slow(*args, **kwargs):
        time.sleep(0.6)  # long enough for the ticking thread to draw the bar
        return real(*args, **kwargs)

    monkeypatch.setattr(sample, "generate_samples", slow)
    cl.accompany(medley(8), save=False, seed=0, progress=True)
    assert "accompanying" in capsys.readouterr().err


def test_no_progress_bar_where_nobody_watches(capsys, no_delay):
    torch.manual_seed(0)
    tiny = ArcnnUNet(ArcnnConfig(base_channels=4, depth=1)).eval()
    cl.enhance(medley(40), model=tiny, save=False, seed=0, sampling_iterations=1)  # progress=None; stderr is a pipe
    assert capsys.readouterr().err == ""
    with pytest.raises(cl.CapsuleError, match="progress must be True or False"):
        cl.enhance(medley(4), model=tiny, save=False, progress="yes")


# -- one thread per free core ---------------------------------------------------------------------------


@pytest.fixture
def fresh_decisions(monkeypatch):
    """Every call looks at the machine again (no decision shared between quick calls)."""
    monkeypatch.setattr(threads, "REFRESH_SECONDS", 0.0)
    monkeypatch.setattr(threads, "_decided", None)


def test_threads_follow_the_free_cores_and_are_put_back(monkeypatch, fresh_decisions):
    monkeypatch.delenv("CAPSULE_THREADS", raising=False)
    monkeypatch.setattr(threads, "available_cores", lambda: 4)
    before = torch.get_num_threads()
    for busy, expected in [(0, 4), (1, 3), (2.6, 1), (9, 1)]:
        monkeypatch.setattr(threads, "_others_running", lambda busy=busy: busy)
        assert threads.free_cores() == expected
        with threads.InferenceThreads() as t:
            assert torch.get_num_threads() == expected == t.threads
        assert torch.get_num_threads() == before


def test_capsule_threads_fixes_the_count(monkeypatch, fresh_decisions):
    monkeypatch.setattr(threads, "_others_running", lambda: 0)
    monkeypatch.setenv("CAPSULE_THREADS", "1")
    assert threads.inference_threads() == 1
    monkeypatch.setenv("CAPSULE_THREADS", "0")
    assert threads.inference_threads() is None  # leave torch's own setting alone
    before = torch.get_num_threads()
    with threads.InferenceThreads():
        assert torch.get_num_threads() == before


def test_a_long_call_re_decides_its_threads_as_the_load_changes(monkeypatch, fresh_decisions):
    monkeypatch.delenv("CAPSULE_THREADS", raising=False)
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    busy = [0]
    monkeypatch.setattr(threads, "_others_running", lambda: busy[0])
    seen = []
    with threads.InferenceThreads() as t:
        for load in (0, 1, 1, 0):
            busy[0] = load
            t.refresh()
            seen.append(torch.get_num_threads())
    assert seen == [2, 1, 1, 2]


def test_quick_calls_in_a_row_share_one_look_at_the_machine(monkeypatch):
    monkeypatch.delenv("CAPSULE_THREADS", raising=False)
    monkeypatch.setattr(threads, "_decided", None)
    looks = []
    monkeypatch.setattr(threads, "free_cores", lambda: looks.append(1) or 1)
    for _ in range(5):
        with threads.InferenceThreads():
            pass
    assert len(looks) == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the kernel's count of runnable tasks")
def test_a_competing_process_takes_a_core_away():
    competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert threads._others_running() >= 1
        assert threads.free_cores() <= max(1, threads.available_cores() - 1)
    finally:
        competitor.kill()
        competitor.wait()
