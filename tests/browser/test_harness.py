"""The harness itself: Lab starts, a notebook runs in Chromium, and the test can reach its kernel."""


def test_lab_runs_a_notebook_and_the_test_reaches_its_kernel(notebook):
    nb = notebook("harness.ipynb", ["x = 6 * 7", "print('ran', x)"])
    assert nb.run("print(x)").strip() == "42"
    outputs = nb.page.locator(".jp-OutputArea-output").all_inner_texts()
    assert any("ran 42" in o for o in outputs)
