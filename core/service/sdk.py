"""The openai package, imported beside a job's first work instead of before it.

Importing openai takes about 1.2 s of one core (most of it building its pydantic types), longer
than a job takes to probe its file, hash it and start its decoder, encoder and voice detection,
which mostly wait for other processes. So core never imports it at the top of a module: `start()`
begins the import on a thread of its own where a job makes its OpenAI backend (and where the app
starts), and `openai` here stands in for the module, waiting for that import the first time one of
its names is read. Nothing in core reads one while a module of its own is being imported, so the
wait never holds an import lock the thread could need.
"""

from __future__ import annotations

import importlib
import sys
import threading
from types import ModuleType

_lock = threading.Lock()
_importing: list[threading.Thread] = []


def start() -> None:
    """Begin importing openai in the background, once (nothing to do when it is imported)."""
    with _lock:
        if _importing or "openai" in sys.modules:
            return
        thread = threading.Thread(target=_import, name="import-openai", daemon=True)
        _importing.append(thread)
        thread.start()


def _import() -> None:
    try:
        importlib.import_module("openai")
    except Exception:  # noqa: BLE001 - `module()` imports it again where it is needed, and raises there
        pass


def module() -> ModuleType:
    """The openai module, once the import `start` began is done (or imported here, if none was)."""
    with _lock:
        thread = _importing[0] if _importing else None
    if thread is not None and thread is not threading.current_thread():
        thread.join()
    return importlib.import_module("openai")


class _Module:
    """Stands in for the openai module: each name read is the module's, after `module()`."""

    def __getattr__(self, name: str):
        return getattr(module(), name)

    def __repr__(self) -> str:
        return "<openai, imported on first use>"


openai = _Module()
