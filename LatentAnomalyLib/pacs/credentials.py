"""Credentials for the DICOMweb service: a file given with ``--credentials`` or the environment, never the command
line (where ``ps`` and shell histories would show them to anyone on the machine).

The file is JSON, ``{"user": ..., "password": ...}`` for HTTP basic or ``{"token": ...}`` for a bearer token. The
environment holds ``LATENT_ANOMALY_PACS_USER`` and ``LATENT_ANOMALY_PACS_PASSWORD`` (basic) or
``LATENT_ANOMALY_PACS_TOKEN`` (bearer). The file wins over the environment.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

ENV_USER = "LATENT_ANOMALY_PACS_USER"
ENV_PASSWORD = "LATENT_ANOMALY_PACS_PASSWORD"
ENV_TOKEN = "LATENT_ANOMALY_PACS_TOKEN"
MAX_FILE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Credentials:
    """HTTP basic (``user``, ``password``) or bearer (``token``) credentials; ``repr`` never shows the secret."""

    user: str | None = None
    password: str | None = None
    token: str | None = None

    def header(self) -> str | None:
        """The ``Authorization`` header value, or None without credentials."""
        if self.token:
            return f"Bearer {self.token}"
        if self.user is not None:
            pair = f"{self.user}:{self.password or ''}".encode()
            return "Basic " + base64.b64encode(pair).decode("ascii")
        return None

    def __repr__(self) -> str:
        kind = "bearer" if self.token else "basic" if self.user is not None else "none"
        return f"Credentials({kind})"


def _from_mapping(data: Mapping[str, object], where: str) -> Credentials:
    token, user, password = data.get("token"), data.get("user"), data.get("password")
    if token:
        return Credentials(token=str(token))
    if user:
        if password is None:
            raise InputError(f"{where}: a user without a password; give both (or a token)")
        return Credentials(user=str(user), password=str(password))
    raise InputError(f"{where}: holds neither a user and password nor a token")


def load_credentials(file: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None) -> Credentials:
    """Credentials from ``file`` (JSON), else from the environment, else none (an open DICOMweb service)."""
    environ = os.environ if environ is None else environ
    if file is not None:
        path = Path(file)
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise InputError(f"{path}: a credentials file of more than {MAX_FILE_BYTES // 1024} KB")
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise InputError(f"{path}: cannot read the credentials file ({error.strerror or error})") from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InputError(
                f'{path}: not a JSON credentials file ({{"user": ..., "password": ...}} or {{"token": ...}})'
            ) from None
        if not isinstance(data, dict):
            raise InputError(f"{path}: a credentials file must hold one JSON object")
        return _from_mapping(data, str(path))
    if environ.get(ENV_TOKEN):
        return Credentials(token=environ[ENV_TOKEN])
    if environ.get(ENV_USER):
        return _from_mapping({"user": environ[ENV_USER], "password": environ.get(ENV_PASSWORD)}, f"${ENV_USER}")
    return Credentials()
