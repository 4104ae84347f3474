"""Notebook 01 itself in a real browser: run it, record on its keyboard, enhance from its panel."""

from __future__ import annotations

from pathlib import Path

from browser_helpers import kernel_json, play_keyboard, wait_kernel, widget_console_errors
from playwright.sync_api import expect

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "01_keyboard_recording.ipynb"


def test_notebook01_records_played_notes_and_hands_them_to_a_technique(notebook):
    nb = notebook("01_keyboard_recording.ipynb", source=NOTEBOOK)
    page = nb.page
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert not [t for t in errors.all_inner_texts() if "Error" in t or "Traceback" in t]

    kb = page.locator(".capsule-keyboard").first
    editor = page.locator(".capsule-pianoroll").first
    kb.locator("[data-testid=key]").first.wait_for()
    editor.locator("[data-testid=note]").first.wait_for()
    # The notebook ran with nothing recorded: it fell back to the sample melody.
    assert kernel_json(nb, "len(melody.notes)") == 26

    # Record: no countdown for the test; three keys by mouse, two by hot keys.
    nb.run("kb.countdown = False")
    kb.get_by_test_id("record").click()
    expect(kb.get_by_test_id("status")).to_have_text("recording…")
    # G3 and C3 from the hot keys at the default octave
    play_keyboard(page, kb, (60, 62, 64), ("g", "a"), hold_ms=150, gap_ms=100)
    kb.get_by_test_id("stop").click()
    assert wait_kernel(nb, "len(kb.events)", 5) == 5
    assert kernel_json(nb, "[n.pitch for n in kb.score(quantize=True).notes]") == [60, 62, 64, 55, 48]

    # The notebook's own next step: rhythm assist puts every start on the 16th-note grid.
    nb.run("raw = kb.score(); melody = cl.quantize(raw)")
    starts = kernel_json(nb, "[n.start for n in melody.notes]")
    assert starts == sorted(starts) and all(s % 6 == 0 for s in starts)

    # The technique panel: "Enhance again" runs AR-CNN and saves a composition whose parent is the saved melody.
    button = page.get_by_role("button", name="Enhance again").first
    button.scroll_into_view_if_needed()
    button.click()
    assert wait_kernel(nb, "len(panel.results)", 1, timeout=60) == 1
    assert kernel_json(nb, "panel.results[0][1].parent == mine.id") is True
    assert kernel_json(nb, "panel.results[0][1].technique") == "arcnn"
    page.get_by_text("saved", exact=False).first.wait_for()

    nb.screenshot("notebook01-keyboard", kb)
    nb.screenshot("notebook01-editor", editor)
    nb.screenshot("notebook01-panel", page.locator(".widget-vbox").filter(has=button).first)
    assert widget_console_errors(page) == []
