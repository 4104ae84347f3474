"""The virtual keyboard in a real browser: play it with the mouse and hot keys, record, read the score."""

from __future__ import annotations

from browser_helpers import kernel_json, play_keyboard, run_all_in_notebook7, wait_kernel, widget_console_errors
from playwright.sync_api import expect

CELLS = ["from capsule_lib.widgets import VirtualKeyboard\nkb = VirtualKeyboard(tempo=120)\nkb"]


def open_keyboard(notebook, name, cells=CELLS):
    """Open a notebook showing a keyboard; return it and the keyboard's root (in *this* notebook's tab:
    Lab restores earlier tests' notebooks in hidden tabs)."""
    nb = notebook(name, cells)
    page = nb.page
    # While Lab restores old tabs, the fixture may have run the cells of another notebook:
    # make sure ours is the current one and has run.
    page.wait_for_function("name => window.jupyterapp.shell.currentWidget.context.path === name", arg=name)
    panel = page.evaluate("() => window.jupyterapp.shell.currentWidget.id")
    kb = page.locator(f"[id='{panel}'] .capsule-keyboard").first
    prompt = page.locator(f"[id='{panel}'] .jp-InputPrompt").first.inner_text()
    if not any(c.isdigit() or c == "*" for c in prompt):  # "[ ]:" -- never run
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    kb.locator("[data-testid=key]").first.wait_for()
    return nb, kb


def first_pitch(kb, pitch: int):
    expect(kb.locator("[data-testid=key]").first).to_have_attribute("data-pitch", str(pitch))


def n_cells(page) -> int:
    return page.locator(".jp-Notebook .jp-Cell").count()


def test_record_with_mouse_and_hot_keys_gives_the_played_score(notebook):
    nb, kb = open_keyboard(notebook, "keyboard_record.ipynb")
    page = nb.page
    keys = kb.locator("[data-testid=key]")
    assert keys.count() == 32
    assert keys.first.get_attribute("data-pitch") == "48"  # C3
    assert keys.last.get_attribute("data-pitch") == "79"  # G5
    status = kb.get_by_test_id("status")
    assert status.inner_text() == "ready"
    cells_before = n_cells(page)

    kb.get_by_test_id("record").click()
    assert status.inner_text() == "recording…"
    # C3 E3 G3 with the mouse, then A3 and C4 from the computer keyboard
    play_keyboard(page, kb, (48, 52, 55), ("h", "k"))
    kb.get_by_test_id("stop").click()
    assert status.inner_text() == "recorded 5 notes"

    assert wait_kernel(nb, "len(kb.events)", 5) == 5
    assert kernel_json(nb, "[n.pitch for n in kb.score().notes]") == [48, 52, 55, 57, 60]
    notes = kernel_json(nb, "[(n.start, n.duration) for n in kb.score().notes]")
    starts = [s for s, _ in notes]
    assert starts == sorted(set(starts)) and starts[0] >= 0
    assert all(d > 0 for _, d in notes)
    events = kernel_json(nb, "kb.events")
    # A 120 ms press at 120 bpm is about a fifth of a beat: 24 steps/beat -> about 6 steps.
    assert all(e["end"] - e["start"] >= 100 for e in events)
    assert kernel_json(nb, "kb.recording") is False
    # Hot keys went to the widget, not to JupyterLab's command-mode shortcuts.
    assert n_cells(page) == cells_before

    # Playback lights the keys and ends back at the take's summary.
    kb.get_by_test_id("play").click()
    assert status.inner_text() == "playing…"
    kb.locator(".ck-down").first.wait_for(timeout=5000)
    expect(status).to_have_text("recorded 5 notes", timeout=10_000)

    nb.screenshot("keyboard", kb)
    assert widget_console_errors(page) == []


def test_octave_buttons_hot_keys_and_web_midi_message(notebook):
    nb, kb = open_keyboard(notebook, "keyboard_octave.ipynb")
    page = nb.page
    first = kb.locator("[data-testid=key]").first
    kb.get_by_test_id("octave-up").click()
    first_pitch(kb, 60)
    assert wait_kernel(nb, "kb.octave", 60) == 60
    kb.get_by_test_id("octave-down").click()
    kb.get_by_test_id("octave-down").click()
    first_pitch(kb, 36)
    assert wait_kernel(nb, "kb.octave", 36) == 36

    cells_before = n_cells(page)
    kb.focus()
    page.keyboard.press("x")  # octave up, not JupyterLab's "cut cell"
    first_pitch(kb, 48)
    page.keyboard.press("z")
    page.keyboard.press("z")
    first_pitch(kb, 24)
    assert kb.get_by_test_id("octave-down").is_disabled()  # C1 is the lowest
    assert n_cells(page) == cells_before

    nb.run("kb.octave = 72")  # Python drives the widget too
    first_pitch(kb, 72)
    assert first.get_attribute("data-pitch") == "72"

    # Headless Chromium refuses Web MIDI: a clear message, no exception, no console error.
    midi = kb.get_by_test_id("midi-status")
    expect(midi).to_contain_text("not available", timeout=10_000)
    assert "use the on-screen keys or hot keys" in midi.inner_text()
    assert "not available" in kernel_json(nb, "kb.midi_status")
    assert widget_console_errors(page) == []


def test_features_tap_tempo_auto_chord_sustain_and_arpeggiator(notebook):
    nb, kb = open_keyboard(notebook, "keyboard_features.ipynb")
    page = nb.page
    for _ in range(4):
        kb.get_by_test_id("tap-tempo").click()
        page.wait_for_timeout(250)
    bpm = kernel_json(nb, "kb.tap_bpm")
    assert 150 < bpm < 260, bpm  # taps every ~0.25 s (+ click time) -> ~200-240 bpm via edit.tap_tempo
    expect(kb.get_by_test_id("tap-bpm")).to_contain_text("bpm")

    kb.get_by_test_id("auto-chord").check()
    kb.get_by_test_id("arp-pattern").select_option("down")
    kb.get_by_test_id("tempo").fill("90")
    kb.get_by_test_id("tempo").press("Enter")
    assert wait_kernel(nb, "[kb.auto_chord, kb.arp_pattern, kb.tempo]", [True, "down", 90]) == [True, "down", 90]

    kb.get_by_test_id("record").click()
    kb.focus()
    page.keyboard.down(" ")  # hold the sustain pedal
    page.keyboard.down("a")  # C3, released while the pedal is down
    page.wait_for_timeout(100)
    page.keyboard.up("a")
    page.wait_for_timeout(300)
    page.keyboard.up(" ")
    page.wait_for_timeout(50)
    kb.get_by_test_id("stop").click()
    assert wait_kernel(nb, "len(kb.events)", 1) == 1
    assert kernel_json(nb, "len(kb.pedal_events)") == 1
    assert kernel_json(nb, "kb.sustain") is False
    # Sustain holds C3 until the pedal lifts; auto-chord adds E and G (C major) through edit.auto_chord.
    notes = kernel_json(nb, "[(n.start, n.pitch, n.duration) for n in kb.score().notes]")
    assert [p for _, p, _ in notes] == [48, 52, 55]
    raw = kernel_json(nb, "[n.duration for n in kb.score(resolve_sustain=False).notes]")
    assert notes[0][2] > raw[0] + 5  # ~400 ms held vs ~100 ms pressed, at 90 bpm 24 steps/beat

    kb.get_by_test_id("arpeggiator").check()
    assert wait_kernel(nb, "kb.arpeggiator", True) is True
    arp = kernel_json(nb, "[n.pitch for n in kb.score().notes]")
    assert arp[:3] == [55, 52, 48]  # "down" over the auto-chord triad
    assert widget_console_errors(page) == []


def test_countdown_then_recording_and_python_can_start_and_stop(notebook):
    cells = [
        "from capsule_lib.widgets import VirtualKeyboard\nkb = VirtualKeyboard(tempo=100, countdown=True, metronome=True)\nkb"
    ]
    nb, kb = open_keyboard(notebook, "keyboard_countdown.ipynb", cells)
    page = nb.page
    status = kb.get_by_test_id("status")
    kb.get_by_test_id("record").click()
    assert status.inner_text().startswith("countdown 5")
    assert kernel_json(nb, "kb.recording") is True
    expect(status).to_have_text("recording…", timeout=8000)
    kb.locator("[data-testid=key][data-pitch='50']").click(delay=100)
    nb.run("kb.recording = False")  # stop from Python
    expect(status).to_have_text("recorded 1 note")
    events = wait_kernel(nb, "len(kb.events)", 1)
    assert events == 1
    start = kernel_json(nb, "kb.events[0]['start']")
    assert 0 <= start < 2000  # measured from the end of the countdown, not from the record click

    nb.run("kb.clear()")
    expect(status).to_have_text("ready")
    assert "nothing recorded yet" in nb.run("try:\n    kb.score()\nexcept Exception as e:\n    print(e)")
    assert widget_console_errors(page) == []


NB7_CELLS = CELLS + [
    "import capsule_lib as cl\nfrom capsule_lib.widgets import PianoRollEditor, technique_panel\n"
    "ed = PianoRollEditor(cl.load_sample('twinkle_twinkle'))\ned",
    "panel = technique_panel('arcnn', cl.load_sample('twinkle_twinkle'))\npanel",
]


def test_renders_in_jupyter_notebook_7(notebook):
    """All three studio widgets -- keyboard, piano-roll editor, technique panel -- render in Notebook 7."""
    nb = notebook("keyboard_nb7.ipynb", NB7_CELLS, app="notebook")
    page = nb.page
    before = run_all_in_notebook7(page)
    kb = page.locator(".capsule-keyboard").first
    kb.locator("[data-testid=key]").first.wait_for()
    assert kb.locator("[data-testid=key]").count() == 32
    assert kb.locator("[data-testid=key]").first.get_attribute("data-pitch") == "48"
    kb.locator("[data-testid=key][data-pitch='60']").click(delay=50)  # plays without errors
    expect(kb.get_by_test_id("midi-status")).to_contain_text("not available", timeout=10_000)
    nb.screenshot("keyboard-notebook7", kb)
    editor = page.locator(".capsule-pianoroll").first
    editor.locator("[data-testid=note]").first.wait_for()
    assert editor.locator("[data-testid=note][data-editable=true]").count() == int(nb.run("print(len(ed.score.notes))"))
    nb.screenshot("pianoroll-notebook7", editor)
    button = page.get_by_role("button", name="Enhance again").first
    button.wait_for()
    assert page.get_by_text("Sampling iterations").first.is_visible()
    assert widget_console_errors(page)[before:] == [], page.console_errors
