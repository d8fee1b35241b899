"""Every report as a person sees it: opened in a real browser (Debian's chromium, driven by
Playwright), every image decoded, no console error, the headline numbers on the page.

Needs ``chromium`` and the ``playwright`` package (the test extra; ``.ci/run`` installs
chromium). Skipped without them, except under ``CI=true``, where that is a failure.
"""

import json
import os
import shutil

import pytest

from tests.fakecifar import fake_cifar_env
from tests.test_cli import run_nndl

CHROMIUM = os.environ.get("NNDL_TEST_CHROMIUM") or shutil.which("chromium") \
    or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("CI=true but chromium or playwright is missing (.ci/run installs them)")
        pytest.skip("needs chromium and playwright")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def open_report(browser, path):
    """(page text, natural sizes of every image, console errors) of ``path`` in chromium."""
    page = browser.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    sizes = page.evaluate("[...document.images].map(i => [i.complete, i.naturalWidth, "
                          "i.naturalHeight])")
    text = page.inner_text("body")
    page.close()
    return text, sizes, errors


def assert_renders(browser, path, images, *headlines):
    text, sizes, errors = open_report(browser, path)
    assert errors == []
    assert len(sizes) == images
    assert all(done and w > 0 and h > 0 for done, w, h in sizes), sizes
    for headline in headlines:
        assert headline in text, (headline, text[:500])
    return text


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return fake_cifar_env(tmp_path_factory)


def pct(value):
    return f"{100 * value:.1f}%"


def test_train_report_in_a_browser(browser, tmp_path, env):
    out = tmp_path / "train"
    result = run_nndl("train", "--num-training", "500", "--num-validation", "100",
                      "--num-test", "100", "--num-iters", "60", "--no-progress",
                      "--out", str(out), env=env)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    # loss, accuracy, first-layer weights, confusion matrix, layers (activations, weights)
    text = assert_renders(browser, out / "report.html", 5, pct(metrics["val_accuracy"]),
                          pct(metrics["test_accuracy"]), "First-layer weights",
                          "Confusion matrix of the test images", "flip TTA")
    assert "None" not in text  # resolved settings: "data  default", not "None"
    overflow, heights = layout(browser, out / "report.html")
    assert overflow <= 0 and max(heights) < 40, (overflow, heights)

    evaluated = tmp_path / "evaluate"
    result = run_nndl("evaluate", str(out / "model.npz"), "--out", str(evaluated), env=env)
    assert result.returncode == 0, result.stderr
    same = f"{100 * metrics['test_accuracy']:.2f}%"  # the run's own test images, by default
    assert_renders(browser, evaluated / "report.html", 1, same)
    overflow, heights = layout(browser, evaluated / "report.html")
    assert overflow <= 0 and max(heights) < 40, (overflow, heights)


def test_reproduce_quick_report_in_a_browser(browser, tmp_path, env):
    out = tmp_path / "reproduce"
    result = run_nndl("reproduce", "--quick", "--no-progress", "--out", str(out), env=env)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    best = metrics["networks"]["best"]
    text = assert_renders(browser, out / "report.html", 5, "A --quick smoke run",
                          pct(best["val_accuracy"]), pct(best["test_accuracy"]))
    assert text.index("A --quick smoke run") < text.index("Summary")


def test_diverged_train_report_in_a_browser(browser, tmp_path, env):
    out = tmp_path / "diverged"
    result = run_nndl("train", "--num-training", "500", "--num-validation", "100",
                      "--num-test", "100", "--num-iters", "60", "--learning-rate", "1e9",
                      "--no-progress", "--out", str(out), env=env)
    assert result.returncode == 1
    # the loss, the accuracy and the layers up to where it diverged
    assert_renders(browser, out / "report.html", 3, "Training diverged", "at iteration")


def test_search_report_in_a_browser_sorts_its_trials(browser, tmp_path, env):
    out = tmp_path / "search"
    result = run_nndl("search", "--sampler", "random", "--trials", "6", "--pruner", "none",
                      "--num-iters", "40", "--num-training", "500", "--num-validation", "100",
                      "--num-test", "100", "--batch-size", "100", "--no-progress",
                      "--out", str(out), env=env)
    assert result.returncode == 0, result.stderr
    best = json.loads((out / "metrics.json").read_text())["best"]
    assert_renders(browser, out / "report.html", 2, pct(best["val_accuracy"]),
                   "Optimization history", "Parameter importances")
    page = browser.new_page()
    page.goto((out / "report.html").resolve().as_uri())
    column = "table.sortable tbody tr td:nth-child({})"
    header = page.locator("table.sortable th", has_text="val_accuracy")
    index = page.locator("table.sortable th").all_inner_texts().index("val_accuracy") + 1
    values = lambda: [float(v.rstrip("%")) for v in  # noqa: E731
                      page.locator(column.format(index)).all_inner_texts()]
    assert len(values()) == 6
    header.click()
    assert values() == sorted(values())
    header.click()
    assert values() == sorted(values(), reverse=True)
    page.close()


def layout(browser, path, width=1280, height=800):
    """(page width past the window, heights of every table body row) of ``path`` opened in
    a ``width``-pixel window."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    heights = page.evaluate("[...document.querySelectorAll('tbody tr')].map("
                            "r => r.getBoundingClientRect().height)")
    page.close()
    return overflow, heights


def test_search_report_fits_a_1280_pixel_window(browser, tmp_path):
    from tests.search_study import mixed_study, write_report

    path = write_report(mixed_study(), tmp_path)
    overflow, heights = layout(browser, path)
    assert overflow <= 0  # no horizontal scroll bar on the page
    assert len(heights) > 8 and max(heights) < 40, heights  # one line a row (about 27 px)
    text = assert_renders(browser, path, 1, "Optimization history")
    assert "8 trials" in text and "5 pruned" in text and "1 failed" in text
