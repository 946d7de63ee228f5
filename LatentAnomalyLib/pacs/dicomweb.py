"""A small DICOMweb client (QIDO-RS search, WADO-RS retrieve, STOW-RS store) on the standard library's HTTP.

Why not a client library: the three calls needed here are a few lines each over ``urllib``, and owning them lets
every failure become one line for the user, retries follow one policy, and nothing but UIDs reaches a log.
A PACS that does not answer (connection refused, timeout, HTTP 502/503/504) is retried with exponential back-off
until ``retry_for`` seconds have passed; refused credentials (HTTP 401/403) are never retried. TLS certificates are
checked with the system's trust store unless the caller passes an SSL context of its own.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import LatentAnomalyError
from .credentials import Credentials

RETRIED_STATUS = {408, 429, 500, 502, 503, 504}


class PacsError(LatentAnomalyError):
    """The DICOMweb service refused a request (one line)."""


class PacsAuthError(PacsError):
    """The DICOMweb service refused the credentials."""


class PacsUnavailable(PacsError):
    """The DICOMweb service did not answer for longer than the retry policy allows."""


@dataclass
class RetryPolicy:
    """Exponential back-off: waits ``first_wait_s``, doubling up to ``max_wait_s``, until ``retry_for_s`` have passed."""

    retry_for_s: float = 600.0
    first_wait_s: float = 1.0
    max_wait_s: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)


def split_multipart(body: bytes, content_type: str) -> list[bytes]:
    """The bodies of the parts of a ``multipart/related`` response (RFC 2046), in order."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise PacsError(f"the DICOMweb service answered {content_type!r} without a multipart boundary")
    delimiter = b"--" + match.group(1).encode("ascii")
    parts = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        _, separator, content = chunk.partition(b"\r\n\r\n")
        if separator:
            parts.append(content[:-2] if content.endswith(b"\r\n") else content)
    return parts


def join_multipart(parts: Iterable[bytes], part_type: str = "application/dicom") -> tuple[bytes, str]:
    """A ``multipart/related`` body of ``parts`` and its Content-Type header value."""
    boundary = uuid.uuid4().hex
    chunks = []
    for part in parts:
        chunks += [f"--{boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode("ascii"), part, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(chunks), f'multipart/related; type="{part_type}"; boundary={boundary}'


class DicomWebClient:
    """QIDO-RS, WADO-RS and STOW-RS against the service root ``url`` (e.g. ``http://host:8042/dicom-web``)."""

    def __init__(
        self,
        url: str,
        credentials: Credentials | None = None,
        retry: RetryPolicy | None = None,
        timeout_s: float = 120.0,
        ssl_context: ssl.SSLContext | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise PacsError(f"{url}: not a DICOMweb service URL (http:// or https://, e.g. http://host:8042/dicom-web)")
        self.url = url.rstrip("/")
        self.credentials = credentials or Credentials()
        self.retry = retry or RetryPolicy()
        self.timeout_s = timeout_s
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.log = log or (lambda message: None)

    def _request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None):
        request = urllib.request.Request(f"{self.url}{path}", data=body, method=method, headers=dict(headers or {}))
        authorization = self.credentials.header()
        if authorization:
            request.add_header("Authorization", authorization)
        started, wait = time.monotonic(), self.retry.first_wait_s
        while True:
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s, context=self.ssl_context) as response:
                    return response.status, response.headers.get("Content-Type", ""), response.read()
            except urllib.error.HTTPError as error:
                if error.code in (401, 403):
                    raise PacsAuthError(
                        f"{self.url}: the DICOMweb service refused the credentials (HTTP {error.code}); check "
                        "--credentials or LATENT_ANOMALY_PACS_USER/_PASSWORD/_TOKEN"
                    ) from None
                if error.code not in RETRIED_STATUS:
                    return error.code, error.headers.get("Content-Type", ""), error.read()
                reason = f"HTTP {error.code}"
            except urllib.error.URLError as error:
                if isinstance(error.reason, ssl.SSLError):
                    raise PacsError(
                        f"{self.url}: TLS failed ({error.reason}); the certificate is not trusted"
                    ) from None
                reason = str(getattr(error.reason, "strerror", None) or error.reason)
            except (TimeoutError, ConnectionError, http.client.HTTPException) as error:
                reason = type(error).__name__
            elapsed = time.monotonic() - started
            if elapsed + wait > self.retry.retry_for_s:
                raise PacsUnavailable(
                    f"{self.url}: the DICOMweb service did not answer for {elapsed:.0f} s ({reason}); nothing more "
                    "was stored, rerun when it is back"
                )
            self.log(f"PACS unreachable ({reason}); retrying in {wait:g} s")
            self.retry.sleep(wait)
            wait = min(wait * 2.0, self.retry.max_wait_s)

    def _json(self, path: str) -> list[dict[str, Any]]:
        status, _, body = self._request("GET", path, headers={"Accept": "application/dicom+json"})
        if status == 204 or (status == 200 and not body.strip()):
            return []
        if status != 200:
            raise PacsError(f"{self.url}{path.split('?')[0]}: the DICOMweb service answered HTTP {status}")
        try:
            data = json.loads(body)
        except json.JSONDecodeError:
            raise PacsError(f"{self.url}{path.split('?')[0]}: the answer is not DICOM JSON") from None
        return data if isinstance(data, list) else []

    def search_series(self, query: dict[str, str], study: str | None = None, include: Sequence[str] = ()) -> list[dict]:
        """QIDO-RS series search (``query``: attribute keyword or tag -> value); DICOM JSON of each series."""
        params = [*query.items(), *(("includefield", tag) for tag in include)]
        prefix = f"/studies/{study}" if study else ""
        return self._json(f"{prefix}/series?{urllib.parse.urlencode(params)}")

    def series_metadata(self, study: str, series: str) -> list[dict]:
        """WADO-RS metadata of every instance of a series (DICOM JSON)."""
        return self._json(f"/studies/{study}/series/{series}/metadata")

    def retrieve_series(self, study: str, series: str) -> list[bytes]:
        """WADO-RS: every instance of a series as a DICOM file (bytes)."""
        headers = {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}
        status, content_type, body = self._request("GET", f"/studies/{study}/series/{series}", headers=headers)
        if status != 200:
            raise PacsError(f"series {series}: the DICOMweb service answered HTTP {status} to the retrieval")
        return split_multipart(body, content_type)

    def store(self, study: str, instances: Sequence[bytes]) -> None:
        """STOW-RS: store ``instances`` (DICOM files as bytes) in ``study``; refuse a partial or failed store."""
        body, content_type = join_multipart(instances)
        headers = {"Content-Type": content_type, "Accept": "application/dicom+json"}
        status, _, answer = self._request("POST", f"/studies/{study}", body=body, headers=headers)
        failed = 0
        with contextlib.suppress(json.JSONDecodeError, AttributeError):  # a store without a JSON answer
            failed = len(json.loads(answer).get("00081198", {}).get("Value", [])) if answer.strip() else 0
        if status not in (200, 202) or failed:
            raise PacsError(
                f"study {study}: the DICOMweb service did not store {failed or 'all'} object(s) (HTTP {status})"
            )


def first_value(item: dict[str, Any], tag: str) -> Any:
    """The first value of ``tag`` (8 hex digits) in a DICOM JSON object, or None."""
    values = item.get(tag, {}).get("Value") or [None]
    value = values[0]
    return value.get("Alphabetic") if isinstance(value, dict) and "Alphabetic" in value else value
