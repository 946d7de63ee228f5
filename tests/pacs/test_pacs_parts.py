"""The parts of the PACS door without a server: match rules, credentials, the DICOMweb client's HTTP, UIDs, state."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading

import pytest

from LatentAnomalyLib.errors import InputError
from LatentAnomalyLib.pacs.credentials import Credentials, load_credentials
from LatentAnomalyLib.pacs.dicomweb import (
    DicomWebClient,
    PacsAuthError,
    PacsUnavailable,
    RetryPolicy,
    join_multipart,
    split_multipart,
)
from LatentAnomalyLib.pacs.selection import parse_rule, parse_rules, selected
from LatentAnomalyLib.pacs.uids import result_uids

pytest.importorskip("pydicom")


def series(description: str | None, **tags: str) -> dict:
    item = {} if description is None else {"0008103E": {"vr": "LO", "Value": [description]}}
    return item | {tag: {"vr": "CS", "Value": [value]} for tag, value in tags.items()}


@pytest.mark.parametrize(
    "description",
    ["t1_mprage_sag_p2", "MPRAGE", "Sag 3D T1 SPGR", "FSPGR BRAVO", "T1W_3D_TFE", "T1w", "sT1W_3D_FFE T1", "MP2RAGE"],
)
def test_the_default_rules_take_the_usual_t1_series(description):
    assert selected(series(description), parse_rules(None), lambda: None)


@pytest.mark.parametrize(
    "description",
    ["t2_tse_tra", "FLAIR 3D", "T1 FLAIR", "DWI b1000", "localizer", "3-plane scout", "SWI", "PD_TSE", None, ""],
)
def test_the_default_rules_leave_other_contrasts_and_unnamed_series(description):
    assert not selected(series(description), parse_rules(None), lambda: None)


def test_rules_on_sequence_attributes_read_missing_ones_from_the_metadata_once():
    rules = [parse_rule("ScanningSequence=GR"), parse_rule("MRAcquisitionType=3D"), parse_rule("SequenceVariant!=MP")]
    calls = []

    def metadata():
        calls.append(1)
        return series(None, **{"00180020": "GR\\IR", "00180023": "3D", "00180021": "SK"})

    assert selected(series("anything"), rules, metadata) and len(calls) == 1
    assert not selected(series("x", **{"00180020": "SE"}), rules, lambda: None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SeriesDescription", "expected FIELD=REGEX"),
        ("NoSuchField=x", "not a DICOM attribute"),
        ("Modality=(", "not a regular"),
    ],
)
def test_bad_rules_are_one_line_errors(text, message):
    with pytest.raises(InputError, match=message):
        parse_rule(text)


def test_credentials_from_a_file_win_over_the_environment_and_never_show(tmp_path):
    environ = {"LATENT_ANOMALY_PACS_TOKEN": "env-token"}
    assert load_credentials(None, environ).header() == "Bearer env-token"
    assert load_credentials(None, {"LATENT_ANOMALY_PACS_USER": "u", "LATENT_ANOMALY_PACS_PASSWORD": "p"}).header() == (
        "Basic dTpw"
    )
    assert load_credentials(None, {}).header() is None
    file = tmp_path / "pacs.json"
    file.write_text(json.dumps({"user": "alice", "password": "pw"}))
    credentials = load_credentials(file, environ)
    assert credentials.user == "alice" and "pw" not in repr(credentials) and "alice" not in repr(credentials)
    file.write_text("user=alice")
    with pytest.raises(InputError, match="not a JSON credentials file"):
        load_credentials(file, environ)
    with pytest.raises(InputError, match="a user without a password"):
        load_credentials(None, {"LATENT_ANOMALY_PACS_USER": "u"})


def test_multipart_bodies_survive_a_round_trip():
    parts = [b"DICM\r\n--not-a-boundary\r\n\r\n\x00\xff", b"", b"second"]
    body, content_type = join_multipart(parts)
    assert split_multipart(body, content_type) == parts


class _Answers(http.server.BaseHTTPRequestHandler):
    """Answers GET with the next status of the server's ``statuses`` (then 200 and an empty JSON list)."""

    def do_GET(self):
        self.server.seen.append(self.headers.get("Authorization"))
        status = self.server.statuses.pop(0) if self.server.statuses else 200
        self.send_response(status)
        self.send_header("Content-Type", "application/dicom+json")
        self.end_headers()
        self.wfile.write(b"[]")

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    server.statuses, server.seen = [], []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_busy_pacs_is_retried_with_back_off_and_refused_credentials_are_not(http_server):
    waits, logged = [], []
    retry = RetryPolicy(retry_for_s=100.0, sleep=waits.append)
    url = f"http://127.0.0.1:{http_server.server_address[1]}/dicom-web"
    client = DicomWebClient(url, Credentials(token="t"), retry=retry, log=logged.append)
    http_server.statuses[:] = [503, 502, 503]
    assert client.search_series({"Modality": "MR"}) == []
    assert waits == [1.0, 2.0, 4.0] and len(logged) == 3 and "HTTP 503" in logged[0]
    assert http_server.seen[-1] == "Bearer t"
    http_server.statuses[:] = [401]
    with pytest.raises(PacsAuthError, match="refused the credentials"):
        client.search_series({})
    assert len(waits) == 3


def test_an_unreachable_pacs_is_given_up_after_the_retry_time(monkeypatch):
    import socket

    import LatentAnomalyLib.pacs.dicomweb as dicomweb

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    waits = []
    client = DicomWebClient(f"http://127.0.0.1:{port}", retry=RetryPolicy(retry_for_s=20.0, sleep=waits.append))
    clock = iter(range(0, 1000, 7))  # 7 s pass between two looks at the clock
    monkeypatch.setattr(dicomweb.time, "monotonic", lambda: float(next(clock)))
    with pytest.raises(PacsUnavailable, match="did not answer for 21 s"):
        client.search_series({})
    assert waits == [1.0, 2.0]  # 7 + 1 and 14 + 2 fit in 20 s, 21 + 4 does not


def test_tls_certificates_are_checked_by_default():
    import ssl

    client = DicomWebClient("https://pacs.example.org/dicom-web")
    assert client.ssl_context.verify_mode == ssl.CERT_REQUIRED and client.ssl_context.check_hostname


def test_result_uids_are_the_same_in_every_process_and_differ_by_model_and_alpha():
    code = "from LatentAnomalyLib.pacs.uids import result_uids as r; print(r('1.2.3', 'm', '1.0', 's', 0.05))"
    printed = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout for _ in range(2)}
    assert len(printed) == 1
    uids = result_uids("1.2.3", "m", "1.0", "s", 0.05)
    assert str(uids) == printed.pop().strip()
    assert all(len(u) <= 64 and u.startswith("2.25.") for u in vars(uids).values())
    assert len(set(vars(uids).values())) == 6  # SEG, SR and capture: series and instance each
    assert result_uids("1.2.3", "m", "1.1", "s", 0.05) != uids != result_uids("1.2.3", "m", "1.0", "s", 0.1)


def test_watch_looks_again_every_period_and_once_does_not(tmp_path, monkeypatch):
    import LatentAnomalyLib.pacs.run as run

    looks, sleeps = [], []

    def no_series(client, rules, study):
        looks.append(study)
        return [], 2

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 3:
            raise KeyboardInterrupt  # how a watching run is stopped

    monkeypatch.setattr(run, "find_series", no_series)
    monkeypatch.setattr(run.time, "sleep", sleep)
    options = run.PacsOptions(url="http://127.0.0.1:9/dicom-web", out=tmp_path / "w", watch_s=30.0, study="1.2")
    with pytest.raises(KeyboardInterrupt):
        run.run_pacs(options, log=lambda message: None)
    assert looks == ["1.2"] * 3 and sleeps == [30.0] * 3
    looks.clear()
    report = run.run_pacs(run.PacsOptions(url="http://127.0.0.1:9/dicom-web", out=tmp_path / "o"), lambda m: None)
    assert looks == [None] and report == {"found": 0, "refused": 2, "done": 0, "failed": 0, "already": 0}
    assert not (tmp_path / "o" / ".pacs.lock").exists()  # the lock goes with the run


def test_without_the_dicom_extra_one_line_names_it(tmp_path, monkeypatch, capsys):
    import sys as system

    from LatentAnomalyLib.cli.main import main

    monkeypatch.setitem(system.modules, "highdicom", None)
    assert main(["pacs", "http://127.0.0.1:9/dicom-web", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'latent-anomaly[dicom]'" in err[0]


def test_a_url_that_is_not_dicomweb_is_one_line(tmp_path, capsys):
    from LatentAnomalyLib.cli.main import main

    assert main(["pacs", "pacs.example.org", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a DICOMweb service URL" in err[0]
