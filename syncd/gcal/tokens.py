"""Google tokens are encrypted at rest with a Fernet key kept outside the database."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from syncd.errors import NotConfigured


def credential_path(configured: str) -> Path:
    """A systemd credential (LoadCredential=) of the same file name wins over the setting."""
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if directory:
        candidate = Path(directory) / Path(configured).name
        if candidate.exists():
            return candidate
    return Path(configured)


class TokenBox:
    def __init__(self, key_file: str, generate: bool = True) -> None:
        """generate: make the key when there is none. Only for one node on its own database:
        nodes sharing PostgreSQL must share one key, which no node can make for the others."""
        path = credential_path(key_file)
        if not path.exists() and not generate:
            raise NotConfigured(
                f"google.token_key_file: {key_file} does not exist. Nodes sharing a PostgreSQL "
                "database must share one key: create it once (python -c 'from "
                "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())') "
                "and install it on every node", field="google.token_key_file")
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written aside, then linked into place: a node killed mid-write (G16) leaves no
            # empty key behind, and of two nodes starting together only one key wins.
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(Fernet.generate_key())
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        self._fernet = Fernet(path.read_bytes().strip())

    def seal(self, tokens: dict) -> str:
        return self._fernet.encrypt(json.dumps(tokens).encode()).decode()

    def open(self, sealed: str) -> dict:
        try:
            return json.loads(self._fernet.decrypt(sealed.encode()))
        except InvalidToken as exc:
            raise ValueError("stored Google tokens cannot be decrypted with this key") from exc
