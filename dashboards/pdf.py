"""HTML to PDF with headless Chromium's print-to-PDF (Debian's ``chromium``), so Persian shapes and runs
right-to-left exactly as in the browser. The page must be self-contained (styles inlined): Chromium reads
it from a file in a private temporary directory, with networking features switched off."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path

from dashboards.errors import DashboardError, RendererBusy

__all__ = ["html_to_pdf", "CHROMIUM", "CHROMIUM_FLAGS", "PdfFailed", "PdfRenderer"]

log = logging.getLogger("negahban.pdf")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run")


class PdfFailed(DashboardError):
    pass


async def html_to_pdf(html: str, *, chromium: str = CHROMIUM, timeout_s: float = 60.0) -> bytes:
    with tempfile.TemporaryDirectory(prefix="ngb-pdf-") as tmp:
        src, out = Path(tmp) / "report.html", Path(tmp) / "report.pdf"
        src.write_text(html, encoding="utf-8")
        proc = await asyncio.create_subprocess_exec(
            chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp}/profile", "--no-pdf-header-footer",
            f"--print-to-pdf={out}", src.as_uri(),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        try:
            _, err = await asyncio.wait_for(proc.communicate(), timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise PdfFailed(f"chromium did not finish within {timeout_s} s") from None
        if proc.returncode != 0 or not out.exists():
            log.error("pdf_failed rc=%s stderr=%s", proc.returncode, err.decode(errors="replace")[-500:])
            raise PdfFailed(f"chromium exited with {proc.returncode}")
        return out.read_bytes()


class PdfRenderer:
    """At most ``concurrency`` Chromium processes at once (each takes ~150 MB), at most ``queue`` requests
    waiting for one; past that ``render`` raises ``RendererBusy`` at once instead of piling up memory."""

    def __init__(self, *, concurrency: int = 2, queue: int = 4, chromium: str = CHROMIUM,
                 timeout_s: float = 60.0) -> None:
        self.concurrency, self.queue, self.chromium, self.timeout_s = concurrency, queue, chromium, timeout_s
        self._slots = asyncio.Semaphore(concurrency)
        self.waiting = self.active = self.peak = self.renders = 0

    async def render(self, html: str) -> bytes:
        if self._slots.locked() and self.waiting >= self.queue:
            raise RendererBusy(max(1, round(self.timeout_s / 4)))
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        try:
            self.active, self.renders = self.active + 1, self.renders + 1
            self.peak = max(self.peak, self.active)
            return await html_to_pdf(html, chromium=self.chromium, timeout_s=self.timeout_s)
        finally:
            self.active -= 1
            self._slots.release()
