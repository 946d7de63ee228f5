"""Drive `latent-anomaly review` and Debian's headless Chromium: shared by the browser tests and the benchmark.

The server runs as a real subprocess started with the command a user types; its printed address is parsed, and it
is stopped with SIGTERM (then killed if it does not end) so no server outlives a test.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ADDRESS = re.compile(r"review: serving .* at (http://\S+/)")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def chromium_paths() -> tuple[str | None, str | None]:
    """(chromium, chromedriver) executables, or None for each one missing."""
    browser = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser")) if p), None)
    return browser, shutil.which("chromedriver")


def review_command(results: Path, *extra: str) -> list[str]:
    """The command line a user would type, run with this interpreter's environment."""
    exe = Path(sys.executable).with_name("latent-anomaly")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "LatentAnomalyLib.cli"]
    return [*command, "review", str(results), "--port", "0", *extra]


class ReviewServer:
    """A `latent-anomaly review` subprocess; ``url`` once it printed its address, ``lines`` its stdout so far."""

    def __init__(self, results: Path, *extra: str, timeout: float = 60.0) -> None:
        self.started = time.perf_counter()
        self.lines: list[str] = []
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed with the server, in stop())
        self.process = subprocess.Popen(
            review_command(results, *extra),
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._ready = threading.Event()
        self.url: str | None = None
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(timeout) or self.url is None:
            self.stop()
            raise RuntimeError(f"review did not print its address: {self.lines} {self.error_text()[-2000:]}")

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            match = ADDRESS.search(line)
            if match and self.url is None:
                self.url = match.group(1)
                self._ready.set()
        self._ready.set()

    def error_text(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode("utf-8", "replace")

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, wait, then SIGKILL; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode


def chromium(user_data_dir: Path, width: int = 1600, height: int = 900):
    """A selenium driver for Debian's chromium with a fresh profile folder."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver_path), options=options)


def element_image(element):
    """The element as the browser shows it, as an (h, w, 3) uint8 array."""
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(element.screenshot_as_png)).convert("RGB"))


def wait_until(condition, timeout: float, interval: float = 0.05):
    """Poll ``condition()`` until it returns something truthy; returns it, or None after ``timeout`` seconds."""
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        value = condition()
        if value is not None and value is not False and (not hasattr(value, "__len__") or len(value)):
            return value
        time.sleep(interval)
    return None


def screenshot(results: Path, out: Path, width: int = 1400, height: int = 800) -> Path:
    """A picture of the review page for ``results`` once the axial view shows the first case (docs/images)."""
    with tempfile.TemporaryDirectory() as profile:
        server = ReviewServer(results)
        browser = chromium(Path(profile), width, height)
        try:
            browser.get(server.url)

            def shown() -> bool:
                images = browser.find_elements("css selector", ".image-display-area")
                return len(images) == 3 and all(i.size["height"] > 10 for i in images)

            wait_until(shown, 60)
            time.sleep(2.0)  # let every view receive its full-quality frame
            browser.save_screenshot(str(out))
        finally:
            browser.quit()
            server.stop()
    return out


if __name__ == "__main__":  # python -m tests.review.driver RESULTS OUT.png
    print(screenshot(Path(sys.argv[1]), Path(sys.argv[2])))
