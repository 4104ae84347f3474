"""Helpers shared by the browser tests (importable by name: tests/browser is on sys.path for them)."""

from __future__ import annotations

import json
import time


def widget_console_errors(page) -> list[str]:
    """Console errors that concern the notebook and its widgets (not the server's optional extensions)."""
    noise = (
        "favicon",
        "/api/",
        "404",
        "Failed to load resource",
        "lsp",
        "language server",
        "extension manager",
        "plugin",
        "kernelspecs",
    )
    return [e for e in page.console_errors if not any(n.lower() in e.lower() for n in noise)]


def kernel_json(nb, expr: str):
    """The JSON value of ``expr`` evaluated in the notebook's own kernel."""
    return json.loads(nb.run(f"import json as _j; print(_j.dumps({expr}))"))


def wait_kernel(nb, expr: str, want, timeout: float = 20, *, check: bool = False):
    """Poll ``expr`` in the kernel until it equals ``want`` (widget state syncs asynchronously).

    Returns the last value; with ``check=True`` a mismatch at the deadline fails the test.
    """
    deadline = time.time() + timeout
    while True:
        got = kernel_json(nb, expr)
        if got == want or time.time() > deadline:
            if check:
                assert got == want, f"{expr} is {got!r} in the kernel, expected {want!r}"
            return got
        time.sleep(0.2)


#: Scroll a roll so cell (step, pitch) is in the middle of its view; return its page coordinates,
#: whether the grid itself (not a note, the key column or the ruler) is under that point, and the
#: note there (``{start, pitch}``) or null.  Evaluate it on the ``[data-testid=grid]`` element.
CELL_POINT = """(grid, [step, pitch]) => {
  const d = grid.dataset, cw = +d.cellWidth, ch = +d.cellHeight;
  const x = (Math.floor(step / +d.gridSteps) + 0.5) * cw, y = (+d.pitchHigh - pitch + 0.5) * ch;
  const scroll = grid.closest('[data-testid=scroll]');
  scroll.scrollLeft = x - scroll.clientWidth / 2;
  scroll.scrollTop = y - scroll.clientHeight / 2;
  const r = grid.getBoundingClientRect(), px = r.left + x, py = r.top + y;
  const hit = document.elementFromPoint(px, py), note = hit && hit.closest('[data-testid=note]');
  return {x: px, y: py, onGrid: grid.contains(hit),
          note: note ? {start: +note.dataset.start, pitch: +note.dataset.pitch} : null};
}"""


def play_keyboard(page, kb, pitches, hot_keys, *, hold_ms: int = 120, gap_ms: int = 80) -> None:
    """Play ``pitches`` on the on-screen keyboard ``kb`` with the mouse, then ``hot_keys`` on the
    computer keyboard (each held ``hold_ms``), as a student records a melody."""
    for pitch in pitches:
        kb.locator(f"[data-testid=key][data-pitch='{pitch}']").click(delay=hold_ms)
        page.wait_for_timeout(gap_ms)
    kb.focus()
    for hot_key in hot_keys:
        page.keyboard.down(hot_key)
        page.wait_for_timeout(hold_ms)
        page.keyboard.up(hot_key)
        page.wait_for_timeout(gap_ms)


def run_all_in_notebook7(page) -> int:
    """Run every cell of the open Notebook 7 page from its Run menu.

    Returns how many console errors there were before: Notebook 7 raises a couple of its own while
    starting ("reading 'schema'", "Command 'filebrowser:open-path' not registered"), with or without
    widgets, so only later ones concern a test.
    """
    page.wait_for_timeout(1000)
    before = len(page.console_errors)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_text("Run All Cells", exact=True).click()
    return before
