"""Modules imported on first use: a cold start pays only for what its first request needs.

The web layer names its services through ``lazy_module``: importing ``app``
registers every route without executing the services behind them (their
models, dataclasses and regular expressions), and a request imports just
the ones it calls. ``make bench`` measures the effect (``cold_start_ratio``).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for a module; the first attribute access imports it, then forwards to it.

    The import goes through ``importlib`` and its per-module lock, so threads
    touching it at once all get the one, fully executed module. Setting or
    deleting an attribute does so on the module itself, so a test that
    monkeypatches a service through a web module patches the service.
    """

    __slots__ = ("_loaded", "_name")

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_loaded", None)

    def _module(self) -> ModuleType:
        loaded: ModuleType | None = object.__getattribute__(self, "_loaded")
        if loaded is None:
            loaded = importlib.import_module(object.__getattribute__(self, "_name"))
            object.__setattr__(self, "_loaded", loaded)
        return loaded

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._module(), attr)

    def __setattr__(self, attr: str, value: Any) -> None:
        setattr(self._module(), attr, value)

    def __delattr__(self, attr: str) -> None:
        delattr(self._module(), attr)

    def __repr__(self) -> str:
        return f"<lazy module {object.__getattribute__(self, '_name')!r}>"


def lazy_module(name: str) -> Any:
    """``name`` imported on first attribute access (typed Any: it behaves as the module)."""
    return LazyModule(name)
