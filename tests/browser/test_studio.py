"""The studio in a real JupyterLab, driven with the mouse and the keyboard in Chromium.

Every step is checked in the notebook's own kernel: the store must hold each composition
with the right parent.  With CAPSULE_DOCS_SCREENSHOTS=1 the flow also refreshes the
pictures in docs/ that the README shows.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from browser_helpers import CELL_POINT, kernel_json, run_all_in_notebook7, wait_kernel, widget_console_errors
from playwright.sync_api import expect
from studio_helpers import FOCUSABLE, STUDIO_CELL, click_range, shoot, wait_for, wait_versions

pytestmark = pytest.mark.viewport(1400, 1500)


def open_studio(notebook, name: str, cells=None):
    nb = notebook(name, cells or [STUDIO_CELL])
    # The file browser closed, as a learner would to give the studio room (and the pictures).
    nb.page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
    root = nb.page.locator(".capsule-studio").first
    expect(root.locator(".cpr-note").first).to_be_visible(timeout=60_000)
    return nb, nb.page, root


def sections(root):
    return root.locator(".cs-section")


def test_the_whole_flow_with_the_mouse_keeps_every_composition_with_its_parent(notebook):
    t0 = time.time()
    nb, page, root = open_studio(notebook, "studio_flow.ipynb")
    input_box, technique_box, output_box, mine_box = (sections(root).nth(i) for i in range(4))
    status = root.get_by_test_id("studio-status")
    expect(status).to_contain_text("Ready")
    assert kernel_json(nb, "len(studio.store.list())") == 0

    # 1. Pick a sample: its piano roll shows at once.
    input_box.get_by_label("Sample melody").select_option(label="Mary Had a Little Lamb")
    wait_kernel(nb, "studio.session.title", "Mary Had a Little Lamb", check=True)
    n_input = kernel_json(nb, "len(studio.session.input.notes)")
    expect(input_box.locator(".capsule-pianoroll [data-testid=note]")).to_have_count(n_input)
    expect(input_box.get_by_test_id("view")).to_have_text("all 9 bars")  # 8 bars and one to write in
    shoot(input_box, "studio-1-input")

    # 2. AR-CNN with few passes (mouse on the slider), then Enhance: busy, the kernel still answers.
    click_range(page, technique_box.get_by_label("Sampling iterations"), 0.01)
    wait_for(nb, "studio.form['sampling_iterations'] <= 3")
    shoot(technique_box, "studio-2-technique")
    technique_box.get_by_role("button", name="Enhance", exact=True).click()
    expect(status).to_have_attribute("data-busy", "true")
    expect(status.locator("progress")).to_be_visible()
    shoot(status, "studio-2-busy")
    asked = time.time()
    assert kernel_json(nb, "studio.busy") is True
    assert time.time() - asked < 10, "the kernel must answer while the technique runs"
    first = wait_versions(nb, 1)
    assert first["technique"] == "arcnn" and first["title"] == "Mary Had a Little Lamb – AR-CNN 1"
    sample = kernel_json(nb, f"studio.store.get({first['parent']!r}).to_dict()")
    assert (sample["technique"], sample["title"], sample["parent"]) == ("sample", "Mary Had a Little Lamb", None)
    line = output_box.get_by_test_id("result-line")
    # (the quotation marks are the <q> element's, drawn by CSS)
    expect(line).to_contain_text(
        "Mary Had a Little Lamb – AR-CNN 1, made by AR-CNN with arcnn-bach from Mary Had a Little Lamb"
    )
    assert first["id"] not in line.inner_text()

    # 3. Enhance again with another creative risk (2.0: the slider's middle).
    click_range(page, technique_box.get_by_label("Creative risk"), 0.5)
    wait_for(nb, "abs(studio.form['creative_risk'] - 2.0) < 0.15")
    technique_box.get_by_role("button", name="Enhance again", exact=True).click()
    second = wait_versions(nb, 2)
    assert second["parent"] == first["id"] and abs(second["parameters"]["creative_risk"] - 2.0) < 0.15
    expect(output_box.locator(".capsule-pianoroll").nth(1)).to_have_attribute("data-audio", "ready", timeout=60_000)
    shoot(output_box, "studio-3-output")

    # 4. Edit a note of the result: double-click an empty cell of the "after" roll, Apply changes.
    after = output_box.locator(".capsule-pianoroll").nth(1)
    grid = after.get_by_test_id("grid")
    top = int(grid.get_attribute("data-pitch-high"))
    grid.evaluate(CELL_POINT, [0, top - 1])  # scroll the roll to the cell, then the page to the roll
    after.get_by_test_id("scroll").scroll_into_view_if_needed()
    p = grid.evaluate(CELL_POINT, [0, top - 1])
    assert p["onGrid"] and not p["note"], p
    page.mouse.dblclick(p["x"], p["y"])
    wait_for(nb, f"any(n.pitch == {top - 1} and n.start == 0 for n in studio.after_roll.score.notes)")
    after.get_by_role("button", name="Apply changes").click()
    edit = wait_versions(nb, 3)
    assert (edit["technique"], edit["parent"]) == ("edit", second["id"])

    # 5. Accompany the result with the GAN.
    technique_box.get_by_role("button", name="GAN", exact=True).click()
    technique_box.get_by_role("button", name="Accompany", exact=True).click()
    gan = wait_versions(nb, 4)
    assert (gan["technique"], gan["parent"], gan["n_tracks"]) == ("gan", edit["id"], 4)

    # 6. Change an instrument: the alto becomes a clarinet.
    output_box.get_by_label("alto instrument").select_option(label="71 Clarinet")
    arranged = wait_versions(nb, 5)
    assert (arranged["technique"], arranged["parent"]) == ("arrange", gan["id"])
    assert arranged["parameters"]["instruments"]["alto"] == 71

    # 7. Extend with the Transformer (about two seconds: the duration slider near its start).
    technique_box.get_by_role("button", name="Transformer", exact=True).click()
    click_range(page, technique_box.get_by_label("Track extension duration"), 0.02)
    wait_for(nb, "studio.form['extension_duration'] <= 3")
    technique_box.get_by_role("button", name="Extend", exact=True).click()
    extended = wait_versions(nb, 6)
    assert (extended["technique"], extended["parent"]) == ("transformer", arranged["id"])

    # 8. Listen: the kernel's rendered audio plays and the playhead follows it.
    expect(after).to_have_attribute("data-audio", "ready", timeout=60_000)
    after.get_by_role("button", name="Play", exact=True).click()
    playhead = after.get_by_test_id("playhead")
    expect(playhead).to_be_visible()
    page.wait_for_timeout(1200)
    played = after.get_by_test_id("audio").evaluate("a => a.currentTime")
    left = playhead.evaluate("e => parseFloat(e.style.left)")
    assert played > 0.3 and left > 0, (played, left)
    after.get_by_role("button", name="Stop", exact=True).click()

    # 9. Download the MP3.
    with page.expect_download() as info:
        output_box.get_by_role("button", name="Download MP3").click()
    download = info.value
    assert download.suggested_filename == "Mary_Had_a_Little_Lamb_Transformer_1.mp3"
    data = Path(download.path()).read_bytes()
    assert len(data) > 10_000 and (data[:3] == b"ID3" or data[0] == 0xFF)

    # The store holds the whole chain, each with the right parent; My compositions shows it, newest first.
    chain = kernel_json(
        nb, "[(c.technique, c.parent and studio.store.get(c.parent).technique) for c in studio.store.list()]"
    )
    assert chain == [
        ["sample", None],
        ["arcnn", "sample"],
        ["arcnn", "arcnn"],
        ["edit", "arcnn"],
        ["gan", "edit"],
        ["arrange", "gan"],
        ["transformer", "arrange"],
    ]
    rows = mine_box.get_by_test_id("compositions").locator("tbody tr")
    expect(rows).to_have_count(7)
    expect(rows.first).to_contain_text("Mary Had a Little Lamb – Transformer 1")
    expect(mine_box.get_by_test_id("lineage").locator("li")).to_have_count(7)
    shoot(mine_box, "studio-4-compositions")
    assert widget_console_errors(page) == []
    print(f"\nwhole studio flow in the browser: {time.time() - t0:.0f} s")


def test_a_recording_made_with_hot_keys_becomes_the_input(notebook):
    nb, page, root = open_studio(notebook, "studio_record.ipynb")
    input_box = sections(root).nth(0)
    input_box.get_by_role("button", name="Record a melody").click()
    kb = input_box.locator(".capsule-keyboard")
    expect(kb).to_be_visible()
    kb.get_by_test_id("record").click()
    expect(kb.get_by_test_id("status")).to_have_text("recording…")
    kb.focus()
    for key in ("a", "s", "d", "f", "g"):  # C3 D3 E3 F3 G3 at the default octave
        page.keyboard.down(key)
        page.wait_for_timeout(160)
        page.keyboard.up(key)
        page.wait_for_timeout(90)
    kb.get_by_test_id("stop").click()
    wait_kernel(nb, "studio.session.input_kind", "recording", check=True)
    assert kernel_json(nb, "[n.pitch for n in studio.session.input.notes]") == [48, 50, 52, 53, 55]
    assert kernel_json(nb, "all(n.start % 6 == 0 for n in studio.session.input.notes)")  # rhythm assist
    expect(input_box.locator(".capsule-pianoroll [data-testid=note]")).to_have_count(5)
    expect(root.get_by_test_id("studio-status")).to_contain_text("Your recording (5 notes) is the input now")
    expect(input_box).to_contain_text("“My recording 1”")
    shoot(input_box, "studio-recording")
    assert widget_console_errors(page) == []


def _dense_midi(n: int) -> bytes:
    from capsule_lib import Note, Score, Track, midi_bytes

    notes = tuple(Note(i * 6, 60 + i % 12, 6) for i in range(n))
    return midi_bytes(Score(tracks=(Track("melody", notes=notes),), resolution=24, tempo=120))


def test_each_malformed_import_is_one_line_in_the_studio_and_changes_nothing(notebook):
    from capsule_lib import load_sample, midi_bytes

    nb, page, root = open_studio(notebook, "studio_import.ipynb")
    input_box = sections(root).nth(0)
    status = root.get_by_test_id("studio-status")
    upload = input_box.get_by_test_id("import-midi")
    notes = input_box.locator(".capsule-pianoroll [data-testid=note]")
    n_notes = notes.count()
    state = "[studio.session.title, len(studio.session.input.notes), len(studio.store.list())]"
    before = kernel_json(nb, state)
    cases = [
        ("empty.mid", b"", "Cannot import empty.mid: it is empty"),
        (
            "truncated.mid",
            midi_bytes(load_sample("ode_to_joy"))[:60],
            "Cannot import truncated.mid: it is corrupt or truncated",
        ),
        ("photo.mid", b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, "Cannot import photo.mid: it is not a MIDI file"),
        (
            "huge.mid",
            b"MThd" + b"\x00" * 3_000_000,
            "Cannot import huge.mid: it is 3.0 MB; the studio imports MIDI files up to 2 MB",
        ),
        (
            "dense.mid",
            _dense_midi(5001),
            "Cannot import dense.mid: it has 5001 notes; the studio opens pieces of up to 5000",
        ),
    ]
    for name, data, message in cases:
        upload.set_input_files(files=[{"name": name, "mimeType": "audio/midi", "buffer": data}])
        expect(status).to_contain_text(message)
        expect(status).to_have_attribute("data-level", "error")
        text = status.locator(".cs-message")
        assert "\n" not in text.inner_text()
        height = text.evaluate("e => e.getBoundingClientRect().height / parseFloat(getComputedStyle(e).lineHeight)")
        assert height < 1.5, f"{name}: the error takes {height:.1f} lines"
        assert kernel_json(nb, state) == before, name
        expect(notes).to_have_count(n_notes)
    shoot(status, "studio-import-error")

    # A good file becomes the input.
    upload.set_input_files(
        files=[{"name": "Lullaby.mid", "mimeType": "audio/midi", "buffer": midi_bytes(load_sample("twinkle_twinkle"))}]
    )
    wait_kernel(nb, "studio.session.title", "Lullaby", check=True)
    expect(status).to_have_attribute("data-level", "ok")
    assert widget_console_errors(page) == []


def test_every_control_is_reachable_by_tab_labelled_and_works_from_the_keyboard(notebook):
    cells = [
        STUDIO_CELL,
        "studio.choose_technique('gan'); studio.generate(wait=True); studio.choose_technique('arcnn')\n"
        "studio._toggle_keyboard()",
    ]
    nb, page, root = open_studio(notebook, "studio_keys.ipynb", cells)
    wait_for(nb, "len(studio.session.versions) == 1 and not studio.busy")
    expect(sections(root).nth(2).get_by_test_id("result-line")).to_be_visible()
    expect(root.locator(".capsule-keyboard")).to_be_visible()
    page.wait_for_timeout(500)

    n_expected = root.evaluate(f"(root) => ({FOCUSABLE})(root).map((e, i) => (e.dataset.expect = String(i), i)).length")
    assert n_expected > 40
    root.evaluate(f"(root) => ({FOCUSABLE})(root)[0].focus()")
    visited = []
    for i in range(n_expected + 20):
        info = page.evaluate(
            """([root, i]) => { const a = document.activeElement;
            if (!root.contains(a)) return null;
            if (!a.dataset.tabstop) a.dataset.tabstop = String(i);
            return a.dataset.expect ?? ('x' + a.tagName); }""",
            [root.element_handle(), i],
        )
        if info is None:
            break
        visited.append(info)
        page.keyboard.press("Tab")
    missing = sorted(set(map(str, range(n_expected))) - set(visited), key=int)
    described = [root.locator(f"[data-expect='{m}']").evaluate("e => e.outerHTML.slice(0, 120)") for m in missing]
    assert not missing, f"Tab never reaches: {described}"

    # Every stop has a name a screen reader can say.
    for stop in root.locator("[data-tabstop]").all():
        expect(stop).to_have_accessible_name(re.compile(r"\w"))

    # And the keyboard works them: a slider moves with an arrow key, a technique is chosen with Enter.
    risk = root.get_by_label("Creative risk")
    risk.focus()
    page.keyboard.press("ArrowRight")
    wait_kernel(nb, "studio.form['creative_risk']", 1.1, check=True)
    root.get_by_role("button", name="Transformer", exact=True).focus()
    page.keyboard.press("Enter")
    wait_kernel(nb, "studio.technique.value", "transformer", check=True)
    expect(root.get_by_role("button", name="Extend", exact=True)).to_be_visible()
    assert widget_console_errors(page) == []


def test_the_studio_works_in_jupyter_notebook_7(notebook):
    nb = notebook(
        "studio_nb7.ipynb", [STUDIO_CELL.replace("seed=1", "'twinkle_twinkle', 'gan', seed=1")], app="notebook"
    )
    page = nb.page
    before = run_all_in_notebook7(page)
    root = page.locator(".capsule-studio").first
    expect(root.locator(".cpr-note").first).to_be_visible(timeout=60_000)
    root.get_by_role("button", name="Accompany", exact=True).click()
    expect(root.get_by_test_id("result-line")).to_contain_text("made by GAN with musegan-chorale", timeout=90_000)
    assert widget_console_errors(page)[before:] == [], page.console_errors
