"""The composition root: building the running service from settings (``negahban.service``) and the CLI
(``negahban.cli``). The only package that imports every other; the layers contract lists no exceptions."""

from monitor import __version__

__all__ = ["__version__"]
