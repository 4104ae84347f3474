"""Helpers shared by the browser tests (importable by name: tests/browser is on sys.path for them)."""

from __future__ import annotations

import json
import time


def widget_console_errors(page) -> list[str]:
    """Console errors that concern the notebook and its widgets (not the server's optional extensions)."""
    noise = ("favicon", "/api/", "404", "Failed to load resource", "lsp", "language server", "extension manager",
             "plugin", "kernelspecs")
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
