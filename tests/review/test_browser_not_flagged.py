"""The review page on a scan that is not flagged (most scans): the views open inside the brain on its strongest
near miss, and the regions above the voxel threshold that the label map does not show are listed with their
p-values, one click away. Before, such a page showed three black views at 0 mm and listed no region."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from .driver import ReviewServer, chromium, chromium_paths, element_image, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

if None in chromium_paths():
    pytest.skip("chromium or chromedriver not installed (apt-get install chromium chromium-driver)", allow_module_level=True)
if importlib.util.find_spec("trame_slicer") is None:
    pytest.skip("the review extra is not installed (pip install '.[review]')", allow_module_level=True)


def _positions(browser) -> dict[str, float]:
    """{'axial': mm, 'coronal': mm, 'sagittal': mm} from the slice-position line."""
    words = browser.find_element("id", "slice-positions").text.split()
    return {words[i]: float(words[i + 1]) for i in range(0, len(words) - 2, 3)}


def _at(browser, ras: list[float]) -> bool:
    try:
        where = _positions(browser)
    except (ValueError, IndexError):
        return False
    r, a, s = ras
    # trame-slicer's sagittal slider runs along -R (seen: 10.6 mm for R = -10.63)
    return abs(where["axial"] - s) < 1.5 and abs(where["coronal"] - a) < 1.5 and abs(abs(where["sagittal"]) - abs(r)) < 1.5


def test_not_flagged_case_opens_on_its_near_miss_and_lists_the_near_misses(low_alpha_case: Path, tmp_path) -> None:
    summary = json.loads((low_alpha_case / "summary.json").read_text())
    assert summary["components"] == [] and summary["regions_not_kept"]
    missed = sorted(summary["regions_not_kept"], key=lambda r: (r["p_value"], -r["peak_score"]))
    server = ReviewServer(low_alpha_case)
    browser = None
    try:
        browser = chromium(tmp_path / "profile")
        browser.get(server.url)
        rows = wait_until(lambda: browser.find_elements("css selector", "[id^=near-miss-row-]"), 40)
        cells = [[td.text for td in row.find_elements("tag name", "td")] for row in rows]
        assert [c[3] for c in cells] == [f"{r['p_value']:.3g}" for r in missed]
        assert {c[4] for c in cells} == {"no"}  # p > alpha: why the label map does not show them
        assert "near miss" in browser.find_element("id", "focus-note").text
        assert wait_until(lambda: _at(browser, missed[0]["centroid_ras_mm"]), 20), _positions(browser)
        axial = browser.find_elements("css selector", ".image-display-area")[0]
        grey = wait_until(lambda: (g := element_image(axial).mean(axis=2)) is not None and (g > 40).mean() > 0.05 and g, 30)
        assert grey is not False and np.std(grey) > 20  # the scan is on screen, not a black view outside the volume
        if len(rows) > 1:
            rows[-1].click()
            assert wait_until(lambda: _at(browser, missed[-1]["centroid_ras_mm"]), 10), _positions(browser)
    finally:
        if browser is not None:
            browser.quit()
        server.stop()
