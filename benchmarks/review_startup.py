"""Page-ready time, threshold-change latency and server memory of `latent-anomaly review` in headless Chromium.

    python benchmarks/review_startup.py [--results DETECT_FOLDER] [--repeats 3]

Without ``--results`` it first runs ``latent-anomaly detect`` on a 240 x 240 x 155 1 mm BraTS T1 from the shared data.
Each repeat starts the real command (a subprocess, as a user would) with Chromium already open, and measures:
- ``address_s``: from the command's start to its printed address;
- ``ready_s``: from the command's start to the three slice views showing the scan in the page;
- threshold changes (clicks on the threshold slider), timed inside the page from the pointer press: ``count_s``
  until the page shows the new label-map voxel count, ``frame_s`` until the axial view shows a new frame;
- ``server_cpu_s``: the server's CPU time (user + system) until ready, which other jobs on the machine do not inflate;
- ``peak_rss_gb``: the server process's peak resident memory (psutil, polled every 50 ms).
The machine's load average is printed with the table: ready times on a shared machine grow with it.
Targets from issue 17: ready < 10 s, threshold change < 1 s, memory < 2 GB.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from LatentAnomalyLib.evaluation.outputs import markdown_table  # noqa: E402
from tests.review.driver import ReviewServer, chromium, element_image, wait_until  # noqa: E402

CLICKS = (0.3, 0.5, 0.15, 0.7, 0.4)  # fractions of the threshold slider's track


def detect_brats(out: Path) -> Path:
    from LatentAnomalyLib.evaluation.datasets import data_root

    scan = sorted((data_root() / "brats2018").glob("*/*_t1.nii.gz"))[0]
    command = [str(Path(sys.executable).with_name("latent-anomaly")), "detect", str(scan), "--out", str(out)]
    subprocess.run([*command, "--progress", "none"], check=True)
    return out


class PeakMemory:
    """Peak RSS of a process and its children, polled in a thread."""

    def __init__(self, pid: int) -> None:
        self.process, self.peak, self._stop = psutil.Process(pid), 0, threading.Event()
        threading.Thread(target=self._poll, daemon=True).start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                rss = sum(p.memory_info().rss for p in [self.process, *self.process.children(recursive=True)])
                self.peak = max(self.peak, rss)
            except psutil.Error:
                return
            time.sleep(0.05)

    def stop(self) -> float:
        self._stop.set()
        return self.peak / 1e9


def _views_show_scan(browser) -> bool:
    images = browser.find_elements("css selector", ".image-display-area")
    if len(images) < 3 or any(img.size["height"] < 10 for img in images):
        return False
    return all((element_image(img).mean(axis=2) > 40).mean() > 0.05 for img in images)


def _text(browser, element_id: str) -> str:
    return browser.find_element("id", element_id).text


WATCH = """
const slider = document.getElementById('threshold-slider').parentElement;
const count = document.getElementById('label-voxels');
const axial = document.querySelector('.image-display-area');
window.__t = {};
slider.addEventListener('pointerdown', () => { window.__t = {start: performance.now()}; }, {capture: true, once: true});
new MutationObserver((_, o) => { if (window.__t.start && !window.__t.count) window.__t.count = performance.now(); })
  .observe(count, {childList: true, characterData: true, subtree: true});
new MutationObserver(() => { if (window.__t.start && !window.__t.frame) window.__t.frame = performance.now(); })
  .observe(axial, {attributes: true, attributeFilter: ['src']});
"""


def threshold_change(browser, fraction: float) -> dict[str, float]:
    """Click the threshold slider; times measured in the page, from the pointer press to the DOM changes."""
    from selenium.webdriver.common.action_chains import ActionChains

    track = browser.find_element("id", "threshold-slider").find_element("xpath", "..")
    slider = track.find_element("css selector", ".v-slider-track")
    browser.execute_script(WATCH)
    offset = int(slider.size["width"] * (fraction - 0.5))
    ActionChains(browser).move_to_element_with_offset(slider, offset, 0).click().perform()
    times = wait_until(lambda: browser.execute_script("return window.__t.frame && window.__t.count ? window.__t : null"), 20, 0.02)
    if times is None:
        raise RuntimeError(f"no new label map and frame after a threshold click: {browser.execute_script('return window.__t')}")
    return {
        "count_s": (times["count"] - times["start"]) / 1000.0,
        "frame_s": (times["frame"] - times["start"]) / 1000.0,
        "voxels": int(_text(browser, "label-voxels")),
    }


def run_once(results: Path, profile: Path) -> tuple[dict[str, float], list[dict[str, float]]]:
    browser = chromium(profile)
    server = None
    try:
        server = ReviewServer(results, timeout=120)
        memory = PeakMemory(server.process.pid)
        address_s = time.perf_counter() - server.started
        browser.get(server.url)
        wait_until(lambda: _views_show_scan(browser), 120, interval=0.1)
        ready_s = time.perf_counter() - server.started
        cpu = psutil.Process(server.process.pid).cpu_times()
        cpu_s = cpu.user + cpu.system  # load-independent: the server's own CPU time until ready
        changes = [threshold_change(browser, f) for f in CLICKS]
        time.sleep(0.5)
        row = {"address_s": address_s, "ready_s": ready_s, "server_cpu_s": cpu_s, "peak_rss_gb": memory.stop()}
        return row, changes
    finally:
        browser.quit()
        if server is not None:
            server.stop()



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, help="a detect output folder (default: detect a BraTS T1 first)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = args.results or detect_brats(Path(tmp) / "brats")
        import SimpleITK as sitk

        size = sitk.ReadImage(str(results / "heatmap.nii.gz")).GetSize()
        rows, changes = [], []
        for repeat in range(args.repeats):
            row, change = run_once(results, Path(tmp) / f"profile{repeat}")
            rows.append({"repeat": repeat + 1, **row,
                         "threshold_count_s_max": max(c["count_s"] for c in change),
                         "threshold_frame_s_max": max(c["frame_s"] for c in change)})  # fmt: skip
            changes += change
    load = ", ".join(f"{v:.1f}" for v in psutil.getloadavg())
    print(f"review of {results} ({'x'.join(map(str, size))}); {psutil.cpu_count()} CPU cores; load average {load}")
    print(markdown_table(rows, list(rows[0])))
    print()
    print(f"threshold changes: {len(changes)} (label-map voxels {sorted({c['voxels'] for c in changes})})")
    for key in ("count_s", "frame_s"):
        values = [c[key] for c in changes]
        print(f"{key}: median {statistics.median(values):.3f} s, max {max(values):.3f} s, "
              f"p90 {float(np.percentile(values, 90)):.3f} s")  # fmt: skip
    print(f"ready_s: median {statistics.median(r['ready_s'] for r in rows):.2f} s; "
          f"peak_rss_gb: max {max(r['peak_rss_gb'] for r in rows):.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
