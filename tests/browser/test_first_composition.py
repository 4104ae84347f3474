"""Issue 19's promise, timed: a first composition in under two minutes from opening notebook 00.

The notebook is 00's own opening (its title and goals, its parameters cell, its imports) with
the studio as its first interactive cell, as 00 will open.  The clock runs from the moment the
browser opens the notebook until the result is on screen with its audio ready to play, at the
studio's defaults (AR-CNN, the sample model, the console's parameters) -- what a newcomer
meets who runs the first cells and presses the blue button.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
from browser_helpers import widget_console_errors
from playwright.sync_api import expect
from studio_helpers import ARTIFACTS

REPO = Path(__file__).resolve().parents[2]
STUDIO_CELL = "studio = cl.Studio(melody_name)   # the music studio: pick, generate, listen, edit, keep\nstudio"
LIMIT_S = 120
TIMEOUT_MS = 60_000

RUN_FIRST_CELLS = """async (n) => {
  const app = window.jupyterapp, panel = app.shell.currentWidget;
  await panel.sessionContext.ready;
  panel.content.activeCellIndex = 0;
  for (let i = 0; i < n; i++) await app.commands.execute('notebook:run-cell-and-select-next');
}"""


def notebook00_opening(path: Path) -> int:
    """Write 00's opening cells and the studio cell to ``path``; return how many cells to run."""
    source = nbformat.read(REPO / "notebooks" / "00_music_studio.ipynb", as_version=4)
    cells = source.cells[:3]  # title and goals, parameters, imports
    assert "melody_name" in cells[1].source and "import capsule_lib as cl" in cells[2].source
    nb = nbformat.v4.new_notebook(cells=[*cells, nbformat.v4.new_code_cell(STUDIO_CELL)])
    nb.metadata = source.metadata
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, path)
    return len(nb.cells)


def test_a_first_composition_takes_under_two_minutes_from_opening_notebook_00(lab, page):
    n_cells = notebook00_opening(lab.root / "first_composition.ipynb")
    t0 = time.time()
    page.goto(lab.url("lab/tree/first_composition.ipynb?reset"))
    page.wait_for_function(
        "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
        " && window.jupyterapp.shell.currentWidget.sessionContext"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session",
        timeout=TIMEOUT_MS,
    )
    opened = time.time() - t0
    page.evaluate(RUN_FIRST_CELLS, n_cells)  # Shift+Enter through the cells, as a learner does
    studio = page.locator(".capsule-studio").first
    expect(studio.locator(".cpr-note").first).to_be_visible(timeout=TIMEOUT_MS)
    shown = time.time() - t0
    studio.get_by_role("button", name="Enhance", exact=True).click()
    clicked = time.time() - t0
    line = studio.get_by_test_id("result-line")
    expect(line).to_contain_text("Ode to Joy – AR-CNN 1, made by AR-CNN with arcnn-bach", timeout=LIMIT_S * 1000)
    after = studio.locator(".cs-section").nth(2).locator(".capsule-pianoroll").nth(1)
    expect(after).to_have_attribute("data-audio", "ready", timeout=60_000)
    done = time.time() - t0
    timing = {
        "notebook open": round(opened, 1),
        "studio shown": round(shown, 1),
        "button pressed": round(clicked, 1),
        "composition saved, audio ready": round(done, 1),
        "limit": LIMIT_S,
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "first-composition.json").write_text(json.dumps(timing, indent=2))
    print(f"\nfirst composition from opening notebook 00: {timing}")
    assert done < LIMIT_S, timing
    assert widget_console_errors(page) == []
