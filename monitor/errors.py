"""Errors of the ``monitor`` package.

    NegahbanError
    ├── SettingsError        an invalid setting (names the variable and its value)
    ├── InventoryError       an invalid inventory file (file, line, path, reason)
    ├── NotFound             a row that does not exist or is not the caller's to see
    └── AccessDenied         the caller's role may not do this
"""

from __future__ import annotations

__all__ = ["NegahbanError", "SettingsError", "InventoryError", "NotFound", "AccessDenied", "InvalidInput"]


class NegahbanError(Exception):
    """Root of every error this project raises on purpose."""


class SettingsError(NegahbanError):
    pass


class InventoryError(NegahbanError):
    def __init__(self, file: str, line: int | None, path: str, reason: str) -> None:
        self.file, self.line, self.path, self.reason = file, line, path, reason
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {path}: {reason}" if path else f"{where}: {reason}")


class InvalidInput(NegahbanError):
    """Input from outside that fails validation; ``field`` names what is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        self.field, self.reason = field, reason
        super().__init__(f"{field}: {reason}")


class NotFound(NegahbanError):
    pass


class AccessDenied(NegahbanError):
    pass
