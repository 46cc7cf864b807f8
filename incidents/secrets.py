"""Secrets named by reference, so a key is kept out of the database, the inventory and the logs.

``env:NAME`` is the environment variable NAME; ``file:PATH`` is the file's content without its trailing
newline (a Docker or systemd credential); anything else is the value itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from monitor.errors import NegahbanError

__all__ = ["SecretMissing", "resolve_secret", "is_reference"]


class SecretMissing(NegahbanError):
    """A reference names a variable that is unset or a file that cannot be read (the reason names which,
    never a value)."""


def is_reference(value: str) -> bool:
    return value.startswith(("env:", "file:"))


def resolve_secret(value: str, env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    if value.startswith("env:"):
        name = value[4:]
        if not env.get(name):
            raise SecretMissing(f"environment variable {name} is not set")
        return env[name]
    if value.startswith("file:"):
        path = Path(value[5:])
        try:
            secret = path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise SecretMissing(f"secret file {path} cannot be read: {exc.strerror}") from exc
        if not secret:
            raise SecretMissing(f"secret file {path} is empty")
        return secret
    return value
