"""The GAN panel in a real browser: pick a model and instruments with the mouse, accompany, and get them."""

from __future__ import annotations

from browser_helpers import kernel_json, wait_kernel, widget_console_errors

CELLS = [
    "import capsule_lib as cl\n"
    "from capsule_lib.widgets import technique_panel\n"
    "melody = cl.load_sample('ode_to_joy')\n"
    "panel = technique_panel('gan', melody, model='musegan-chorale', seed=5)\n"
    "panel",
]


def _select(page, param: str):
    return page.locator(f".cc-form select[data-param='{param}']").first


def test_gan_panel_accompanies_with_the_instruments_chosen_in_the_browser(notebook):
    nb = notebook("gan_panel.ipynb", CELLS)
    page = nb.page
    button = page.get_by_role("button", name="Accompany again").first
    button.wait_for()

    # The chorale model's accompaniment tracks, each with its genre's default instrument (choir aahs, 52),
    # each a <select> named by its <label>.
    for voice in ("alto", "tenor", "bass"):
        assert _select(page, f"instrument:{voice}").input_value() == "52"
        assert page.get_by_label(voice, exact=True).first.input_value() == "52"

    # Another model brings its own tracks; then choose strings for the viola with the mouse.
    page.get_by_label("Model", exact=True).first.select_option(label="musegan-quartet (sample)")
    assert wait_kernel(nb, "sorted(panel.instruments)", ["cello", "viola", "violin 2"], check=True)
    _select(page, "instrument:viola").select_option(label="48 String Ensemble 1")
    assert wait_kernel(nb, "panel.parameters['instruments']['viola']", 48, check=True)

    button.scroll_into_view_if_needed()
    button.click()
    assert wait_kernel(nb, "len(panel.results)", 1, timeout=60, check=True)
    got = kernel_json(nb, "[(t.name, t.program, len(t.notes) > 0) for t in panel.results[0][0].tracks]")
    assert got[0][0] == melody_name(nb) and got[0][2]
    assert [(name, program) for name, program, _ in got[1:]] == [("violin 2", 40), ("viola", 48), ("cello", 42)]
    assert all(sounding for _, _, sounding in got[1:])
    comp = kernel_json(
        nb,
        "[panel.results[0][1].technique, panel.results[0][1].model, "
        "panel.results[0][1].parameters['instruments']['viola']]",
    )
    assert comp == ["gan", "musegan-quartet", 48]
    # The result line names the composition and its model, not its id.
    line = page.locator(".cc-result").first
    line.wait_for()
    assert "Ode to Joy – GAN 1" in line.inner_text() and "musegan-quartet" in line.inner_text()
    assert kernel_json(nb, "panel.results[0][1].id") not in line.inner_text()
    nb.screenshot("gan-panel", page.locator(".cc-card").first)
    assert widget_console_errors(page) == []


def melody_name(nb) -> str:
    return kernel_json(nb, "melody.tracks[0].name")
