"""The piano-roll editor in a real JupyterLab, driven with the mouse in Chromium.

Every edit made in the browser is checked in the notebook's own kernel: the
widget only draws and reports, Python's ``ed.score`` is the truth.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import pytest
from browser_helpers import CELL_POINT, kernel_json, wait_kernel, widget_console_errors
from playwright.sync_api import expect

from capsule_lib.midi import read_midi

SETUP = [
    "import capsule_lib as cl\nfrom capsule_lib.widgets import PianoRollEditor",
    "ed = PianoRollEditor(cl.load_sample('twinkle_twinkle'))\napplied = []\ned.on_apply(applied.append)\ned",
]
NOTE = "[data-testid=note]"


kernel = kernel_json
wait_kernel = functools.partial(wait_kernel, check=True)


def note_selector(start: int, pitch: int, **attrs) -> str:
    extra = "".join(f'[data-{k}="{v}"]' for k, v in attrs.items())
    return f'{NOTE}[data-start="{start}"][data-pitch="{pitch}"]{extra}'


def cell_point(root, start: int, pitch: int) -> dict:
    return root.locator("[data-testid=grid]").evaluate(CELL_POINT, [start, pitch])


# Lab restores the tabs of its saved workspace, and may leave the one the harness asked for behind
# another tab (whose cells the harness then ran).  Find -- or open -- the panel of ``path``, make it
# current, and say whether its code cells have all run.
OPEN_PANEL = """async (path) => {
  const app = window.jupyterapp;
  let w = [...app.shell.widgets('main')].find((x) => x.context && x.context.path === path);
  if (!w) w = await app.commands.execute('docmanager:open', {path});
  app.shell.activateById(w.id);
  await w.context.ready;
  await w.sessionContext.ready;
  const ran = w.content.widgets.every((c) => c.model.type !== 'code' || c.model.executionCount);
  return {id: w.id, ran};
}"""
KERNEL_IDLE = """(id) => { const w = [...window.jupyterapp.shell.widgets('main')].find((x) => x.id === id);
  const k = w && w.sessionContext.session && w.sessionContext.session.kernel; return !!k && k.status === 'idle'; }"""


def open_editor(notebook, name: str, cells=SETUP):
    """Open the notebook; return it, its page and the editor inside *this* notebook's panel."""
    nb = notebook(name, cells)
    page = nb.page
    panel = page.evaluate(OPEN_PANEL, name)
    if not panel["ran"]:
        page.wait_for_function(KERNEL_IDLE, arg=panel["id"])
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        time.sleep(0.5)
        nb.wait_idle()
    root = page.locator(f"[id='{panel['id']}'] .capsule-pianoroll")
    expect(root).to_have_count(1, timeout=30_000)
    root.scroll_into_view_if_needed()
    return nb, page, root


def drag(page, x: float, y: float, dx: float, dy: float) -> None:
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx / 2, y + dy / 2, steps=4)
    page.mouse.move(x + dx, y + dy, steps=4)
    page.mouse.up()


def test_edit_with_the_mouse_apply_and_download(notebook):
    nb, page, root = open_editor(notebook, "pianoroll_edit.ipynb")
    n_notes = kernel(nb, "len(ed.score.notes)")
    assert n_notes == 42
    expect(root.locator(NOTE)).to_have_count(n_notes)
    assert root.locator(NOTE + '[data-editable="true"]').count() == n_notes
    assert root.locator("[data-testid=note-resize]").count() == n_notes
    grid = root.locator("[data-testid=grid]")
    cell_w, row_h = float(grid.get_attribute("data-cell-width")), float(grid.get_attribute("data-cell-height"))
    assert int(grid.get_attribute("data-grid-steps")) == kernel(nb, "ed.grid") == 6

    # Double-click an empty cell: a one-cell note appears there, in the kernel too.
    start, pitch = 12, 71
    assert kernel(nb, f"[n.start for n in ed.score.notes if n.pitch == {pitch}]") == []
    p = cell_point(root, start, pitch)
    assert p["onGrid"] and p["note"] is None, p
    page.mouse.dblclick(p["x"], p["y"])
    expect(root.locator(note_selector(start, pitch, duration=6))).to_have_count(1)
    assert kernel(nb, f"[(n.start, n.pitch, n.duration) for n in ed.score.notes if n.pitch == {pitch}]") == [
        [12, 71, 6]
    ]
    expect(root.locator(NOTE)).to_have_count(n_notes + 1)

    # Double-click an existing note: it is removed.
    p = cell_point(root, 96, 69)
    assert p["note"] == {"start": 96, "pitch": 69}, p
    page.mouse.dblclick(p["x"], p["y"])
    expect(root.locator(note_selector(96, 69))).to_have_count(0)
    assert kernel(nb, "[(n.start, n.pitch) for n in ed.score.notes if n.start == 96]") == []
    expect(root.locator(NOTE)).to_have_count(n_notes)

    # Drag the first note (C4 at step 0) up two rows: D4.
    p = cell_point(root, 0, 60)
    assert p["note"] == {"start": 0, "pitch": 60}, p
    drag(page, p["x"], p["y"], 0, -2 * row_h)
    expect(root.locator(note_selector(0, 62))).to_have_count(1)
    assert kernel(nb, "[(n.start, n.pitch, n.duration) for n in ed.score.notes if n.start == 0]") == [[0, 62, 24]]

    # Drag the right edge of the second note (C4 at step 24, a quarter) two cells right: 24 + 2 * 6 steps.
    cell_point(root, 24, 60)
    handle = root.locator(note_selector(24, 60)).locator("[data-testid=note-resize]")
    box = handle.bounding_box()
    drag(page, box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, 2 * cell_w, 0)
    expect(root.locator(note_selector(24, 60, duration=36))).to_have_count(1)
    assert kernel(nb, "[(n.start, n.duration) for n in ed.score.notes if n.pitch == 60 and n.start == 24]") == [
        [24, 36]
    ]
    assert kernel(nb, "ed.edits") == 4

    # Apply changes: the kernel's applied score is the edited one, and the callback saw it.
    assert kernel(nb, "ed.applied == ed.score") is False
    root.locator("[data-testid=apply]").click()
    wait_kernel(
        nb, "[ed.applied == ed.score, len(applied), applied[-1] == ed.score if applied else None]", [True, 1, True]
    )
    expect(root.locator("[data-testid=status]")).to_contain_text("Applied 4 edits")

    # Download melody: a MIDI file of the working score.
    with page.expect_download() as info:
        root.locator("[data-testid=download]").click()
    download = info.value
    assert download.suggested_filename == "melody.mid"
    data = Path(download.path()).read_bytes()
    assert data.startswith(b"MThd")
    downloaded = read_midi(data, track="all", resolution=24)
    expected = kernel(nb, "[(n.start, n.pitch, n.duration) for n in ed.score.notes]")
    assert [[n.start, n.pitch, n.duration] for n in downloaded.notes] == expected

    assert widget_console_errors(page) == []


def test_play_moves_the_playhead_zoom_and_screenshot(notebook):
    nb, page, root = open_editor(notebook, "pianoroll_play.ipynb")
    playhead = root.locator("[data-testid=playhead]")
    grid = root.locator("[data-testid=grid]")

    root.locator("[data-testid=play]").click()
    expect(playhead).to_be_visible()
    wait_kernel(nb, "ed.playing", True)
    x0 = playhead.evaluate("e => e.getBoundingClientRect().left")
    page.wait_for_timeout(700)
    x1 = playhead.evaluate("e => e.getBoundingClientRect().left")
    assert x1 > x0, (x0, x1)
    # At 100 bpm and 24 steps a beat, ~0.7 s is ~28 steps: the playhead is about where the tempo says.
    left = float(playhead.evaluate("e => parseFloat(e.style.left)"))
    steps = left / (float(grid.get_attribute("data-cell-width")) / 6)
    assert 20 < steps < 200, steps
    root.locator("[data-testid=stop]").click()
    expect(playhead).to_be_hidden()
    wait_kernel(nb, "ed.playing", False)

    # The roll opens with the whole piece in view ("Whole piece" pressed); zoom in widens the cells
    # and the notes with them, zoom out goes back, "Whole piece" fits it again.
    first = root.locator(note_selector(0, 60))
    fit = root.locator("[data-testid=fit]")
    expect(fit).to_have_attribute("aria-pressed", "true")
    expect(root.locator("[data-testid=zoom-in]")).to_have_text("+ Zoom in")
    expect(root.locator("[data-testid=zoom-out]")).to_have_text("− Zoom out")
    shown = grid.get_attribute("data-cell-width")
    width0, note0 = float(shown), first.bounding_box()["width"]
    root.locator("[data-testid=zoom-in]").click()
    expect(grid).not_to_have_attribute("data-cell-width", shown)
    width1 = float(grid.get_attribute("data-cell-width"))
    assert width1 == pytest.approx(width0 * 1.5, rel=1e-3)
    assert first.bounding_box()["width"] > note0
    wait_kernel(nb, "[ed.fit, round(ed.zoom * 18, 3)]", [False, round(width1, 3)])
    expect(fit).to_have_attribute("aria-pressed", "false")
    root.locator("[data-testid=zoom-out]").click()
    page.wait_for_function("([g, w]) => Math.abs(+g.dataset.cellWidth - w) < 1e-6", arg=[grid.element_handle(), width0])
    root.locator("[data-testid=zoom-in]").click()
    fit.click()
    expect(fit).to_have_attribute("aria-pressed", "true")
    wait_kernel(nb, "ed.fit", True)
    root.locator("[data-testid=zoom-in]").click()  # back to a view wider than the roll, for the scroll check

    # Scrolling reaches the last note of a piece wider than the view.
    scroll = root.locator("[data-testid=scroll]")
    assert scroll.evaluate("e => e.scrollWidth > e.clientWidth")
    last = kernel(nb, "max(n.start for n in ed.score.notes)")
    p = cell_point(root, last, kernel(nb, f"[n.pitch for n in ed.score.notes if n.start == {last}][0]"))
    assert p["note"] is not None and p["note"]["start"] == last

    shot = nb.screenshot("pianoroll", root)
    assert shot.exists() and shot.stat().st_size > 5000
    assert widget_console_errors(page) == []


MULTI = [
    "from capsule_lib.score import Score, Track, Note\nfrom capsule_lib.widgets import PianoRollEditor",
    "s = Score(tracks=(Track('melody', notes=(Note(0, 60, 24), Note(0, 62, 24), Note(24, 64, 24))),"
    " Track('bass', program=32, notes=(Note(0, 48, 48),))), resolution=24, tempo=120)\n"
    "ed = PianoRollEditor(s)\ned",
]


def test_other_tracks_are_read_only_and_refused_edits_show_why(notebook):
    nb, page, root = open_editor(notebook, "pianoroll_tracks.ipynb", MULTI)
    expect(root.locator(NOTE)).to_have_count(4)
    bass = root.locator(note_selector(0, 48))
    assert bass.get_attribute("data-track") == "1" and bass.get_attribute("data-editable") == "false"
    assert bass.locator("[data-testid=note-resize]").count() == 0
    colours = {
        root.locator(note_selector(0, 60)).evaluate("e => e.style.background"),
        bass.evaluate("e => e.style.background"),
    }
    assert len(colours) == 2
    expect(root).to_contain_text("bass")

    # Double-clicking on the bass note edits the melody track underneath, never the bass.
    p = cell_point(root, 0, 48)
    page.mouse.dblclick(p["x"], p["y"])
    expect(root.locator(note_selector(0, 48))).to_have_count(2)
    assert kernel(nb, "[[(n.start, n.pitch, n.duration) for n in t.notes] for t in ed.score.tracks]") == [
        [[0, 48, 6], [0, 60, 24], [0, 62, 24], [24, 64, 24]],
        [[0, 48, 48]],
    ]

    # Dragging C4 onto the D4 that sounds with it is refused: the note goes back, the status says why.
    row_h = float(root.locator("[data-testid=grid]").get_attribute("data-cell-height"))
    p = cell_point(root, 12, 60)
    assert p["note"] == {"start": 0, "pitch": 60}, p
    drag(page, p["x"], p["y"], 0, -2 * row_h)
    status = root.locator("[data-testid=status]")
    expect(status).to_contain_text("Cannot move")
    expect(status).to_have_class("cpr-status error")
    expect(root.locator(note_selector(0, 60))).to_have_count(1)
    assert kernel(nb, "[(n.start, n.pitch) for n in ed.score.tracks[0].notes]") == [[0, 48], [0, 60], [0, 62], [24, 64]]
    assert kernel(nb, "ed.edits") == 1
    nb.screenshot("pianoroll_tracks", root)
    assert widget_console_errors(page) == []
