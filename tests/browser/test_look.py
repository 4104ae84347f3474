"""Issue 14 item 8 in a real browser: the keyboard, the piano roll and the panels look like one studio.

No label is cut (an element's text wider than its box, or a list showing less than its choice), the
panel controls line up, the editor's buttons say what they do, every bar of a piece can be reached,
and a panel's result line names the composition instead of showing its id.
"""

from __future__ import annotations

from browser_helpers import kernel_json, widget_console_errors
from playwright.sync_api import expect

CELLS = [
    "import capsule_lib as cl\nfrom capsule_lib.widgets import PianoRollEditor, VirtualKeyboard, technique_panel",
    "long_piece = PianoRollEditor(cl.load_sample('ode_to_joy'))\nlong_piece",
    "eight_bars = PianoRollEditor(cl.load_sample('mary_had_a_little_lamb'))\neight_bars",
    "VirtualKeyboard()",
    "arcnn = technique_panel('arcnn', cl.load_sample('ode_to_joy'), show=False)\narcnn",
    "gan = technique_panel('gan', cl.load_sample('ode_to_joy'), show=False)\ngan",
    "transformer = technique_panel('transformer', cl.load_sample('ode_to_joy'), show=False)\ntransformer",
]

# Elements whose text does not fit their box (ignoring boxes meant to scroll), and <select>s whose
# chosen option is wider than the list shows.
CUT = """(roots) => {
  const cut = [], canvas = document.createElement('canvas').getContext('2d');
  for (const root of roots) for (const e of [root, ...root.querySelectorAll('*')]) {
    const cs = getComputedStyle(e);
    if (!e.getClientRects().length || cs.display === 'inline') continue;
    if (e.matches('.cpr-scroll, .cs-table-wrap, .cpr-inner, .cpr-grid, .cpr-layer, .cpr-keys, .cpr-ruler, .cc-visually-hidden')) continue;
    const ownText = [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (e.tagName === 'SELECT') {
      const opt = e.options[e.selectedIndex];
      if (!opt) continue;
      canvas.font = cs.font;
      const room = e.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight) - 18;
      if (canvas.measureText(opt.text).width > room) cut.push('select: ' + opt.text);
    } else if (ownText && e.scrollWidth > e.clientWidth + 1) {
      cut.push(`${e.tagName}.${e.className}: ${e.textContent.trim().slice(0, 60)}`);
    }
  }
  return cut;
}"""


def test_no_cut_label_aligned_controls_labelled_buttons_every_bar_and_a_named_result(notebook):
    nb = notebook("look.ipynb", CELLS)
    page = nb.page
    page.get_by_role("button", name="Extend again").wait_for()
    roots = page.locator(".capsule-ui.capsule-pianoroll, .capsule-keyboard, .capsule-ui.cc-card")
    expect(roots).to_have_count(6)

    # No label is cut, anywhere in the six widgets.
    assert roots.evaluate_all(CUT) == []
    for text in ("Maximum input notes to remove", "Harmonize", "Track extension duration"):
        expect(page.get_by_text(text, exact=True).first).to_be_visible()
    assert page.get_by_role("button", name="Accompany again").evaluate("b => b.scrollWidth <= b.clientWidth")

    # One grid per form: every control of a panel starts at the same x.
    for form in page.locator(".cc-card .cc-form").all():
        lefts = form.evaluate(
            "f => [...f.querySelectorAll('input, select')].map((c) => Math.round(c.getBoundingClientRect().left))"
        )
        assert lefts and len(set(lefts)) == 1, lefts

    # The editor's buttons say what they do (no bare "−" / "+").
    long_piece, eight = page.locator(".capsule-pianoroll").nth(0), page.locator(".capsule-pianoroll").nth(1)
    for button in long_piece.locator("button").all():
        text, label = button.inner_text(), button.get_attribute("aria-label")
        assert label and sum(ch.isalpha() for ch in text) >= 3, (text, label)

    # Eight bars (and one to write in) all in view at once.
    expect(eight.get_by_test_id("view")).to_have_text("all 9 bars")
    inside = eight.evaluate("""r => { const s = r.querySelector('[data-testid=scroll]').getBoundingClientRect();
        return [...r.querySelectorAll('.cpr-bar')].map((b) => b.getBoundingClientRect().right <= s.right + 1); }""")
    assert inside == [True] * 9

    # Seventeen bars: the view says how far it shows; scrolling reaches the last bar.
    view = long_piece.get_by_test_id("view")
    expect(view).to_contain_text("of 17 · scroll")
    long_piece.scroll_into_view_if_needed()
    long_piece.get_by_test_id("scroll").evaluate("s => { s.scrollLeft = s.scrollWidth; }")
    expect(view).to_contain_text("–17 of 17")
    last = long_piece.evaluate("""r => { const bars = [...r.querySelectorAll('.cpr-bar')], b = bars[bars.length - 1];
        const box = b.getBoundingClientRect(), hit = document.elementFromPoint(box.left + 3, box.top + box.height / 2);
        return [b.textContent, hit === b || b.contains(hit)]; }""")
    assert last == ["17", True]

    # A panel's result line names the composition, what made it and its parent -- never an id.
    button = page.get_by_role("button", name="Accompany again")
    button.scroll_into_view_if_needed()
    button.click()
    line = page.locator(".cc-card").nth(1).locator(".cc-result")
    expect(line).to_contain_text("Saved Ode to Joy – GAN 1, made by GAN with musegan-chorale", timeout=60_000)
    button.click()
    expect(line).to_contain_text(
        "Saved Ode to Joy – GAN 2, made by GAN with musegan-chorale from Ode to Joy – GAN 1", timeout=60_000
    )
    ids = kernel_json(nb, "[c.id for _, c in gan.results]")
    assert not any(i in line.inner_text() for i in ids)
    assert widget_console_errors(page) == []
