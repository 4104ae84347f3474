"""The notebooks as a student meets them.

Static checks read the stored notebooks: clean, a parameters cell, short cells, learning goals,
exercises with folded answers, a summary and the next capsule.  The executed checks run every
notebook headless with papermill in a small configuration (the way a teacher runs it for a
class) from the ``notebooks/`` folder itself, and look at what each cell shows: no error, no
warning, no stuck progress bar, a picture wherever a cell draws, compact MP3 players, a small
file, and nothing written into the repository.  ``make test`` also runs every notebook at its
*defaults* with ``pytest --nbval-lax notebooks/``.
"""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

# Small, fast settings per notebook for CI; notebooks not listed run with their defaults.
SMOKE = {
    "00_music_studio.ipynb": {"melody_name": "twinkle_twinkle", "tempo_bpm": 90, "transpose_by": 2},
    "02_gan.ipynb": {
        "epochs": 2,
        "steps_per_epoch": 3,
        "train_pieces": 20,
        "batch_size": 8,
        "sample_every": 1,
        "full_training": False,
    },
    "03_ar_cnn.ipynb": {
        "sampling_iterations": 4,
        "eval_windows": 4,
        "train_epochs": 1,
        "train_chorales": 20,
        "train_steps_per_epoch": 2,
    },
    "04_transformer.ipynb": {"train_steps": 4, "train_pieces": 12, "extension_duration": 6.0},
    "05_evaluation.ipynb": {"epochs": 2, "steps_per_epoch": 3, "failure_epochs": 2, "eval_windows": 4},
}

MAX_CODE_LINES = 15
MAX_EXECUTED_BYTES = 5_000_000
# A cell that calls one of these draws a picture, so its output must hold an image.
DRAWS = re.compile(
    r"\bplot_\w+\(|\bcompare_pianorolls\(|\bplt\.(?:subplots|figure|show)\(|\.imshow\(|"
    r"\bcl\.show(?:_pair)?\(|\bdraw_\w+\("
)
PROGRESS_BAR = re.compile(r"\d+%\|")


def _code(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def _markdown(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def test_there_are_six_capsules():
    assert [p.name[:2] for p in NOTEBOOKS] == ["00", "01", "02", "03", "04", "05"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_clean_with_a_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    code = _code(nb)
    assert "parameters" in code[0].metadata.get("tags", []), "the first code cell must be tagged 'parameters'"
    dirty = [i for i, c in enumerate(code) if c.outputs or c.execution_count is not None]
    assert dirty == [], f"cells with stored outputs: {dirty}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_code_cell_is_longer_than_fifteen_lines(path):
    nb = nbformat.read(path, as_version=4)
    long = {
        i: len(c.source.splitlines())
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and len(c.source.splitlines()) > MAX_CODE_LINES
    }
    assert long == {}, f"cells longer than {MAX_CODE_LINES} lines (cell: lines): {long}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_teaches_goals_exercises_summary_and_next_step(path):
    nb = nbformat.read(path, as_version=4)
    intro = nb.cells[0].source
    assert nb.cells[0].cell_type == "markdown"
    assert "You will" in intro or "learning goals" in intro.lower(), "the first cell states the learning goals"
    assert re.search(r"\b\d+ minutes\b", intro), "the first cell says how long the capsule takes"
    text = _markdown(nb)
    exercises = re.findall(r"\*\*Exercise \d+", text)
    answers = re.findall(r"<details>\s*<summary>", text)
    assert 2 <= len(exercises) <= 4, f"2-3 exercises, found {len(exercises)}"
    assert len(answers) >= len(exercises), "every exercise has a folded answer (<details><summary>)"
    assert re.search(r"^#+ .*Summary", text, re.M), "a summary section"
    if not path.name.startswith("05"):
        nxt = f"{int(path.name[:2]) + 1:02d}"
        assert re.search(rf"\*\*(Next: )?{nxt}\b", text) or f"{nxt}_" in text, f"points to the next capsule, {nxt}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_smoke_parameters_exist_in_the_parameters_cell(path):
    params = _code(nbformat.read(path, as_version=4))[0].source
    for name in SMOKE.get(path.name, {}):
        assert re.search(rf"^{name}\s*=", params, re.M), f"{name} is not a parameter of {path.name}"


def _repository_state() -> str:
    out = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all", "--ignored=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


def _texts(output) -> list[str]:
    if output.output_type == "stream":
        return [output.text]
    if output.output_type in ("display_data", "execute_result"):
        return [str(output.data.get("text/plain", "")), str(output.data.get("text/html", ""))]
    if output.output_type == "error":
        return ["\n".join(output.traceback)]
    return []


def _looks_at(nb) -> list[str]:
    """Everything a student would object to in an executed notebook, one line each."""
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for out in cell.outputs:
            if out.output_type == "error":
                problems.append(f"cell {i}: {out.ename}: {out.evalue}")
            if out.output_type == "stream" and out.name == "stderr":
                problems.append(f"cell {i} writes to stderr: {out.text.strip()[:120]}")
            for text in _texts(out):
                if re.search(r"\bTraceback\b|Warning\b", text):
                    problems.append(f"cell {i} shows a traceback or warning: {text.strip()[:120]}")
                if PROGRESS_BAR.search(text):
                    problems.append(f"cell {i} keeps a progress bar: {text.strip()[:80]}")
                if "audio/wav" in text or "audio/x-wav" in text:
                    problems.append(f"cell {i} embeds uncompressed WAV audio")
        images = [o for o in cell.outputs if "image/png" in o.get("data", {})]
        if DRAWS.search(cell.source) and not images:
            problems.append(f"cell {i} draws but shows no picture")
        for o in images:
            if len(base64.b64decode(o.data["image/png"])) < 2000:
                problems.append(f"cell {i} shows an (almost) empty picture")
    return problems


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_headless_and_shows_what_it_promises(path, tmp_path, monkeypatch):
    import papermill as pm

    # The kernel must use Jupyter's inline backend, as for a student (CI exports MPLBACKEND=Agg,
    # under which a notebook shows no plot at all).
    monkeypatch.delenv("MPLBACKEND", raising=False)
    before = _repository_state()
    out = tmp_path / path.name
    pm.execute_notebook(
        str(path),
        str(out),
        parameters=SMOKE.get(path.name, {}),
        cwd=str(path.parent),
        kernel_name="python3",
        progress_bar=False,
        log_output=False,
        execution_timeout=600,
    )
    assert _repository_state() == before, "running the notebook wrote into the repository"
    nb = nbformat.read(out, as_version=4)
    assert _looks_at(nb) == []
    assert out.stat().st_size <= MAX_EXECUTED_BYTES
    printed = "".join(t for c in _code(nb) for o in c.outputs for t in _texts(o))
    for needle in SHOWS.get(path.name, ()):
        assert needle in printed, needle


# What a notebook must show (beyond running): results read from the shipped models' cards.
SHOWS = {
    "05_evaluation.ipynb": ("Folds 0, 1, 2, 3, 4, 5, 6, 7, 8, 9: 46 held-out pieces",),  # the appendix
}


def test_the_output_checks_catch_what_a_student_would_see():
    """The executed-notebook checks fail on each problem they look for."""
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("cl.plot_pianoroll(x)"),
            nbformat.v4.new_code_cell("import warnings"),
            nbformat.v4.new_code_cell("train()"),
            nbformat.v4.new_code_cell("display(Audio(wav))"),
        ]
    )
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stderr", text="UserWarning: careful\n")]
    nb.cells[2].outputs = [nbformat.v4.new_output("display_data", data={"text/plain": "epochs:   0%|   | 0/5"})]
    nb.cells[3].outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={"text/html": '<audio controls><source src="data:audio/wav;base64,UklGR" type="audio/wav"></audio>'},
        )
    ]
    found = "\n".join(_looks_at(nb))
    for needle in (
        "cell 0 draws but shows no picture",
        "cell 1 writes to stderr",
        "cell 2 keeps a progress bar",
        "cell 3 embeds uncompressed WAV",
    ):
        assert needle in found


@pytest.mark.notebook
@pytest.mark.slow
def test_a_finished_progress_bar_leaves_nothing_in_the_saved_notebook(tmp_path):
    """A library call that runs past the bar's delay shows a bar in the notebook; once done, neither the
    live notebook nor the file papermill saves keeps it (a teacher's executed copy would show a frozen
    "100%|###|" line).  A bar stopped early -- an error -- stays, so the student sees where it stopped."""
    import papermill as pm

    setup = (
        "import time\nfrom capsule_lib.techniques import _common\n"
        "_common.PROGRESS_DELAY_S = 0.2  # the library's bars appear after 2 s; a short wait will do here"
    )
    run = (
        "print('before')\nbar = _common.progress_bar({n}, 'working', 's', None)\n"
        "for _ in range(3):\n    time.sleep(0.2)\n    bar.update(1)\nbar.close()\nprint('after')"
    )
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(c) for c in (setup, run.format(n=3), run.format(n=5))]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nbformat.write(nb, tmp_path / "in.ipynb")
    pm.execute_notebook(str(tmp_path / "in.ipynb"), str(tmp_path / "out.ipynb"), progress_bar=False, log_output=False)
    done, stopped = nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[1:]
    assert "".join(t for o in done.outputs for t in _texts(o)).split() == ["before", "after"]
    assert any(o.output_type == "display_data" for o in done.outputs)  # the bar was shown, then emptied
    assert any(PROGRESS_BAR.search(t) for o in stopped.outputs for t in _texts(o))  # 3 of 5: it stays
