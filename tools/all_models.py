"""Import every package's models so that ``Base.metadata`` holds every table (for tooling and tests only;
the running service imports them through its composition root)."""

import importlib
import pkgutil

from monitor.db import Base

PACKAGES = ["monitor", "probes", "incidents", "tickets", "dashboards"]


def load_all():
    for pkg_name in PACKAGES:
        pkg = importlib.import_module(pkg_name)
        for mod in pkgutil.walk_packages(pkg.__path__, pkg_name + "."):
            if mod.name.endswith(".models") or mod.name in {"monitor.accounts"}:
                importlib.import_module(mod.name)
    return Base.metadata
