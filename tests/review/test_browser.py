"""`latent-anomaly review` in Debian's headless Chromium, on the committed samples' batch results.

One server (a real subprocess started with the command a user types) and one browser for the module; the tests run
in file order and the last one stops the server and checks it ended cleanly.
"""

from __future__ import annotations

import csv
import hashlib
import http.client
import importlib.util
import json
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import SimpleITK as sitk

from .driver import ReviewServer, chromium, chromium_paths, element_image, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

if None in chromium_paths():
    pytest.skip("chromium or chromedriver not installed (apt-get install chromium chromium-driver)", allow_module_level=True)
if importlib.util.find_spec("trame_slicer") is None:
    pytest.skip("the review extra is not installed (pip install '.[review]')", allow_module_level=True)


@pytest.fixture(scope="module")
def page(batch_results: Path, tmp_path_factory: pytest.TempPathFactory):
    server = ReviewServer(batch_results)
    browser = None
    try:
        browser = chromium(tmp_path_factory.mktemp("chromium-profile"))
        browser.get(server.url)
        yield server, browser
    finally:
        if browser is not None:
            browser.quit()
        server.stop()


def _text(browser, element_id: str) -> str:
    return browser.find_element("id", element_id).text


def _axial(browser):
    return browser.find_elements("css selector", ".image-display-area")[0]


def _colours(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks of label-outline green and of warm (Inferno orange/red over grey) pixels."""
    r, g, b = (image[..., i].astype(int) for i in range(3))
    green = (g > 150) & (r < 120) & (b < 150) & (g - r > 80)
    warm = (r - b > 60) & (r > 120) & (r >= g)
    return green, warm


def _overlay_visible(browser) -> np.ndarray | None:
    axial = _axial(browser)
    if axial.size["height"] < 10:  # no frame yet
        return None
    image = element_image(axial)
    green, warm = _colours(image)
    return image if green.sum() > 10 and warm.sum() > 10 else None


def test_page_loads_with_cases_in_scores_order(page, batch_results: Path) -> None:
    server, browser = page
    assert server.url.startswith("http://127.0.0.1:")
    rows = wait_until(lambda: browser.find_elements("css selector", "[id^=case-row-]"), 30)
    with (batch_results / "scores.csv").open() as handle:
        expected = [r["case_id"] for r in csv.DictReader(handle)]
    assert [row.text.split()[0] for row in rows] == expected
    assert wait_until(lambda: f"case {expected[0]}" in _text(browser, "case-summary"), 10)


def _cells(browser, prefix: str) -> list[list[str]]:
    return [[td.text for td in row.find_elements("tag name", "td")]
            for row in browser.find_elements("css selector", f"[id^={prefix}]")]  # fmt: skip


def test_case_list_regions_and_summary_show_p_values(page, batch_results: Path) -> None:
    _, browser = page
    with (batch_results / "scores.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert browser.find_element("id", "case-p-header").text == "p-value"  # scores.csv has a p_value column
    assert [cells[2] for cells in _cells(browser, "case-row-")] == [f"{float(r['p_value']):.3g}" for r in rows]
    summary = json.loads((batch_results / rows[0]["case_id"] / "summary.json").read_text())
    text = _text(browser, "case-summary")
    assert f"subject p-value {summary['subject_p_value']:.3g} (alpha {summary['alpha']:g};" in text
    regions = _cells(browser, "region-row-")
    assert [r[3] for r in regions] == [f"{c['p_value']:.3g}" for c in summary["components"]]
    assert [r[4] for r in regions] == ["yes" if c["p_value"] <= summary["alpha"] else "no" for c in summary["components"]]
    assert not browser.find_elements("id", "region-note")  # at the calibrated threshold: no note


def test_axial_view_shows_scan_heatmap_and_outline(page) -> None:
    _, browser = page
    image = wait_until(lambda: _overlay_visible(browser), 40)
    assert image is not None, "no heatmap colours and label outline in the axial view"
    grey = image.mean(axis=2)
    assert (grey > 40).mean() > 0.05 and grey.std() > 20  # the scan is there, not a blank frame
    green, warm = _colours(image)
    ys, xs = np.nonzero(green)
    box = warm[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    assert box.sum() > 0.5 * warm.sum()  # the heatmap colours lie where the label map is


def test_opacity_slider_fades_the_heatmap(page) -> None:
    _, browser = page
    from selenium.webdriver.common.action_chains import ActionChains

    slider = browser.find_element("id", "opacity-slider").find_element("xpath", "..")
    track = slider.find_element("css selector", ".v-slider-track")
    # 2 px inside the track's left end (its very edge can round outside it): opacity 0 at the slider's 0.05 step
    ActionChains(browser).move_to_element_with_offset(track, -track.size["width"] // 2 + 2, 0).click().perform()

    def faded() -> np.ndarray | None:
        image = element_image(_axial(browser))
        green, warm = _colours(image)
        return image if green.sum() > 10 and warm.sum() < 5 else None  # the outline stays, the heatmap is gone

    assert wait_until(faded, 10) is not None
    ActionChains(browser).move_to_element_with_offset(track, 0, 0).click().perform()  # back to the middle: 0.5
    assert wait_until(lambda: _overlay_visible(browser), 10) is not None


def test_threshold_slider_changes_label_map_and_saved_file(page, batch_results: Path) -> None:
    _, browser = page
    from selenium.webdriver.common.action_chains import ActionChains

    case = browser.find_element("id", "case-summary").text.split()[1]
    original = batch_results / case / "labelmap.nii.gz"
    before_sha = hashlib.sha256(original.read_bytes()).hexdigest()
    before = int(_text(browser, "label-voxels"))
    track = browser.find_element("id", "threshold-slider").find_element("xpath", "..")
    slider = track.find_element("css selector", ".v-slider-track")
    threshold = _text(browser, "threshold-value")
    # a click at 20% of the track (offsets are from its centre): a lower threshold, so more voxels
    ActionChains(browser).move_to_element_with_offset(slider, -int(slider.size["width"] * 0.3), 0).click().perform()
    assert wait_until(lambda: _text(browser, "threshold-value") != threshold, 5)
    changed = wait_until(lambda: int(_text(browser, "label-voxels")) != before, 10)  # live, without the model
    after = int(_text(browser, "label-voxels"))
    assert changed and after > before
    assert "no p-value" in _text(browser, "region-note")  # regions at another threshold: no region calibration
    assert {cells[3] for cells in _cells(browser, "region-row-")} == {"n/a"}
    browser.find_element("id", "save-button").click()
    assert wait_until(lambda: "saved" in _text(browser, "save-message"), 10), _text(browser, "save-message")
    saved = sitk.GetArrayFromImage(sitk.ReadImage(str(batch_results / case / "labelmap_reviewed.nii.gz")))
    assert int(saved.sum()) == int(_text(browser, "label-voxels")) == after
    assert hashlib.sha256(original.read_bytes()).hexdigest() == before_sha  # the original is never overwritten
    browser.find_element("id", "calibrated-button").click()  # back to the calibrated threshold: detect's label map
    assert wait_until(lambda: int(_text(browser, "label-voxels")) == before, 10), _text(browser, "label-voxels")
    assert wait_until(lambda: not browser.find_elements("id", "region-note"), 5)
    assert "n/a" not in {cells[3] for cells in _cells(browser, "region-row-")}  # p-values back with the regions


def test_region_click_moves_the_slices(page) -> None:
    _, browser = page
    rows = wait_until(lambda: browser.find_elements("css selector", "[id^=region-row-]"), 10)
    assert len(rows) >= 2
    rows[0].click()
    first = wait_until(lambda: _text(browser, "slice-positions"), 5)
    rows[-1].click()
    assert wait_until(lambda: _text(browser, "slice-positions") != first, 5), first


def test_second_case_renders(page) -> None:
    _, browser = page
    summary = _text(browser, "case-summary")
    browser.find_element("id", "case-row-1").click()
    assert wait_until(lambda: _text(browser, "case-summary") != summary, 20)
    image = wait_until(lambda: _overlay_visible(browser), 30)
    assert image is not None and (image.mean(axis=2) > 40).mean() > 0.05


def _get(url: str, path: str) -> tuple[int, bytes]:
    parts = urlparse(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_only_results_files_are_served(page, batch_results: Path) -> None:
    server, _ = page
    status, body = _get(server.url, "/results/scores.csv")
    assert status == 200 and body == (batch_results / "scores.csv").read_bytes()
    secret = Path("/etc/passwd").read_bytes()
    for path in ("/results/..%2f..%2f..%2fetc%2fpasswd", "/results/../../../../etc/passwd", "/../../../etc/passwd",
                 "/results/%2fetc%2fpasswd", "/results/.records/", "/%2e%2e/%2e%2e/etc/passwd"):  # fmt: skip
        status, body = _get(server.url, path)
        assert status in (403, 404) and secret not in body, path


def test_server_ends_cleanly_on_sigterm(page) -> None:
    server, _ = page
    assert server.process.poll() is None
    assert server.stop() == 0
    assert server.lines[-1] == "review: stopped"


def test_ctrl_c_ends_cleanly_and_a_busy_port_is_one_line(batch_results: Path) -> None:
    import signal
    import socket
    import subprocess

    from .driver import review_command

    server = ReviewServer(batch_results)
    server.process.send_signal(signal.SIGINT)
    assert server.process.wait(20) == 0 and server.lines[-1] == "review: stopped"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        command = [c for c in review_command(batch_results) if c not in ("--port", "0")]
        done = subprocess.run([*command, "--port", str(port)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port} (error while attempting to bind on address "
        f"('127.0.0.1', {port}): address already in use)"
    ]
