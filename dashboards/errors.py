"""Errors of the ``dashboards`` package.

    NegahbanError
    └── DashboardError
        ├── LoginRefused         wrong username or password, or an inactive account (never says which)
        ├── TooManyAttempts      the username or the address tried too often; ``retry_after_s`` says when
        ├── CsrfRejected         a form or unsafe request without this session's CSRF token
        └── RendererBusy         every PDF slot and queue place is taken; ``retry_after_s`` says when to retry
"""

from __future__ import annotations

from monitor.errors import NegahbanError

__all__ = ["DashboardError", "LoginRefused", "TooManyAttempts", "CsrfRejected", "RendererBusy"]


class DashboardError(NegahbanError):
    pass


class LoginRefused(DashboardError):
    pass


class TooManyAttempts(DashboardError):
    def __init__(self, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"too many login attempts; retry after {retry_after_s} s")


class CsrfRejected(DashboardError):
    pass


class RendererBusy(DashboardError):
    def __init__(self, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"the PDF renderer is busy; retry after {retry_after_s} s")
