"""Errors of the ``monitor`` package.

    NegahbanError
    ├── SettingsError        an invalid setting (names the variable and its value)
    ├── InventoryError       an invalid inventory file (file, line, path, reason)
    │   └── InventoryErrors  every error of one file, up to a limit
    ├── NotFound             a row that does not exist or is not the caller's to see
    └── AccessDenied         the caller's role may not do this
"""

from __future__ import annotations

__all__ = ["NegahbanError", "SettingsError", "InventoryError", "InventoryErrors", "NotFound", "AccessDenied", "InvalidInput"]


class NegahbanError(Exception):
    """Root of every error this project raises on purpose."""


class SettingsError(NegahbanError):
    pass


class InventoryError(NegahbanError):
    def __init__(self, file: str, line: int | None, path: str, reason: str) -> None:
        self.file, self.line, self.path, self.reason = file, line, path, reason
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {path}: {reason}" if path else f"{where}: {reason}")


class InventoryErrors(InventoryError):
    """Every error found in one inventory file (up to a limit); the attributes are the first one's."""

    def __init__(self, errors: list[InventoryError], total: int) -> None:
        first = errors[0]
        super().__init__(first.file, first.line, first.path, first.reason)
        self.errors, self.total = errors, total
        lines = [str(e) for e in errors]
        if total > len(errors):
            lines.append(f"{first.file}: {total - len(errors)} more errors not shown")
        self.args = ("\n".join(lines),)


class InvalidInput(NegahbanError):
    """Input from outside that fails validation; ``field`` names what is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        self.field, self.reason = field, reason
        super().__init__(f"{field}: {reason}")


class NotFound(NegahbanError):
    pass


class AccessDenied(NegahbanError):
    pass
