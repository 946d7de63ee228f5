"""A real Orthanc (Debian's ``orthanc`` and ``orthanc-dicomweb``) as a child process of the tests.

Started on a free port with a temporary configuration and storage folder; HTTP basic authentication on; only local
clients are answered (``RemoteAccessAllowed`` false: Orthanc 1.10 has no option to bind 127.0.0.1 alone) and its DICOM
server is off. Stopping and starting it again on the same storage is how the tests take the PACS away mid-run.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

PLUGIN_DIRS = (Path("/usr/share/orthanc/plugins"), Path("/usr/lib/orthanc"))
USER, PASSWORD = "radiology", "s3cret-test"


def orthanc_binary() -> str | None:
    return shutil.which("Orthanc") or (str(Path("/usr/sbin/Orthanc")) if Path("/usr/sbin/Orthanc").exists() else None)


def dicomweb_plugin() -> Path | None:
    for folder in PLUGIN_DIRS:
        found = sorted(folder.glob("libOrthancDicomWeb.so*")) if folder.is_dir() else []
        if found:
            return found[0]
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Orthanc:
    """One Orthanc server: ``url`` is its DICOMweb root; ``rest`` calls its REST API (with the credentials)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        storage = folder / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "latent-anomaly-test",
            "StorageDirectory": str(storage),
            "IndexDirectory": str(storage),
            "HttpPort": self.port,
            "DicomServerEnabled": False,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {USER: PASSWORD},
            "HttpThreadsCount": 8,
            "Plugins": [str(dicomweb_plugin())],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        }
        (folder / "orthanc.json").write_text(json.dumps(config))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/dicom-web"

    def start(self, timeout_s: float = 30.0) -> None:
        log = (self.folder / "orthanc.log").open("ab")
        self.process = subprocess.Popen(
            [orthanc_binary(), str(self.folder / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited: {(self.folder / 'orthanc.log').read_text()[-2000:]}")
            try:
                self.rest("/system")
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        raise RuntimeError("Orthanc did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def rest(self, path: str, data: bytes | None = None, method: str | None = None) -> Any:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method)
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode())
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body[:1] in (b"{", b"[") else body

    def upload(self, folder: Path) -> None:
        for path in sorted(folder.iterdir()):
            self.rest("/instances", data=path.read_bytes(), method="POST")

    def series_of(self, modality: str) -> list[dict[str, Any]]:
        """The series of ``modality`` in the archive (Orthanc's expanded records)."""
        query = {"Level": "Series", "Query": {"Modality": modality}, "Expand": True}
        return self.rest("/tools/find", data=json.dumps(query).encode(), method="POST")

    def instance_files(self, series: dict[str, Any]) -> list[bytes]:
        return [self.rest(f"/instances/{i}/file") for i in series["Instances"]]

    def count_instances(self) -> int:
        return int(self.rest("/statistics")["CountInstances"])
