"""What every framework plug-in shares: its optional :class:`Extra`, how it is listed
(:class:`Recognised`), the export cache (in memory per model, and optionally on disk by a digest
of what was exported, bounded in size) and the progress of a long export."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import sys
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ei_widgets.errors import ModelLoadError, ProfileError
from ei_widgets.models.types import LoadedModel


@dataclass(frozen=True)
class Recognised:
    """A framework model found in a namespace, as discovery lists it.

    ``ready`` is False when the model cannot be profiled yet; ``reason`` then says what to do
    ("install ei_widgets[torch]", how to give an input shape, "not fitted", ...).
    """

    framework: str
    kind: str
    class_name: str
    ready: bool
    reason: str = ""


def module_available(name: str) -> bool:
    """Whether ``import name`` would find a module, without importing it.

    A ``None`` entry in ``sys.modules`` (the standard way to block an import) counts as absent.
    """
    if name in sys.modules:
        return sys.modules[name] is not None
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


@dataclass(frozen=True)
class Extra:
    """A framework's optional extra: what it is called, what a user installs and what it brings
    beyond the framework itself (which the model's existence proves). Each plug-in has one."""

    framework: str  # "torch": the name Recognised and the errors use
    title: str  # "PyTorch": how people call it
    modules: tuple[str, ...]  # what the extra brings: ("torch", "onnxscript")

    @property
    def name(self) -> str:
        """What to install: ``ei_widgets[torch]``."""
        return f"ei_widgets[{self.framework}]"

    def missing(self) -> list[str]:
        """The extra's modules that cannot be imported (empty when all are there)."""
        return [module for module in self.modules if not module_available(module)]

    def install_hint(self, missing: list[str]) -> str:
        """One sentence: what is missing and which extra brings it."""
        return f"install {self.name} to profile and run it (missing: {', '.join(missing)})"

    def check_loadable(self, label: str, options: Mapping[str, object]) -> None:
        """Refuse options the plug-in does not know, then a model whose extra is missing."""
        if options:
            raise ProfileError(
                f"{label}: unknown option(s) {', '.join(sorted(options))} for a {self.title} "
                "model; give example_inputs= or input_shape=."
            )
        missing = self.missing()
        if missing:
            raise ModelLoadError(f"{label} is a {self.title} model: {self.install_hint(missing)}.")


class ExportCache:
    """The last few exports of each model, keyed by what was exported (shapes, a state stamp).

    Models are held weakly, so a freed model's entries go with it and an ``id`` is never
    mistaken for another model's. Objects that cannot be weakly referenced are not cached.
    ``disk``, when given, keeps exports across processes by a digest of the model (see
    :class:`DiskCache`); a plug-in that can compute such a digest uses it after a miss here.
    """

    def __init__(self, per_model: int, disk: DiskCache | None = None) -> None:
        self.per_model = per_model
        self.disk = disk
        self._lock = threading.Lock()
        self._entries: weakref.WeakKeyDictionary[Any, OrderedDict[object, LoadedModel]] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, model: Any, key: object) -> LoadedModel | None:
        with self._lock:
            try:
                entries = self._entries.get(model)
            except TypeError:
                return None
            if entries is None or key not in entries:
                return None
            entries.move_to_end(key)
            return entries[key]

    def put(self, model: Any, key: object, loaded: LoadedModel) -> None:
        with self._lock:
            try:
                entries = self._entries.setdefault(model, OrderedDict())
            except TypeError:
                return
            entries[key] = loaded
            while len(entries) > self.per_model:
                entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def count(self, model: object) -> int:
        """How many exports of ``model`` are held."""
        with self._lock:
            try:
                return len(self._entries.get(model) or ())
            except TypeError:
                return 0


# ----------------------------------------------------------------------------------------------
# the export cache on disk

CACHE_DIR_ENV = "EI_WIDGETS_CACHE_DIR"
CACHE_MB_ENV = "EI_WIDGETS_EXPORT_CACHE_MB"
DEFAULT_DISK_BYTES = 2 << 30
"""What the exports on disk may take together by default (2 GiB): the least recently used go
first; the newest entry is always kept, whatever its size."""


def cache_root() -> Path:
    """``$EI_WIDGETS_CACHE_DIR``, else ``$XDG_CACHE_HOME/ei_widgets``, else
    ``~/.cache/ei_widgets``."""
    given = os.environ.get(CACHE_DIR_ENV, "").strip()
    if given:
        return Path(given).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "ei_widgets"


def disk_limit() -> int:
    """The bound on the bytes the exports on disk take (``$EI_WIDGETS_EXPORT_CACHE_MB``)."""
    raw = os.environ.get(CACHE_MB_ENV, "").strip()
    try:
        megabytes = float(raw) if raw else None
    except ValueError:
        megabytes = None
    if megabytes is None or not 0 <= megabytes < float("inf"):
        return DEFAULT_DISK_BYTES
    return int(megabytes * 2**20)


class DiskCache:
    """Exports kept on disk, one folder per digest (``<cache_root>/exports/<name>/<digest>/``).

    An entry is written elsewhere and moved in whole (``os.replace``), so a reader never sees half
    of one; reading an entry marks it used. After each new entry the least recently used entries
    are removed until all of them fit in :func:`disk_limit`. Every failure to read or write is a
    miss, never an error: the cache only saves time.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()

    @property
    def folder(self) -> Path:
        return cache_root() / "exports" / self.name

    def scratch(self) -> Path:
        """A new empty folder next to the entries (same file system: moving it in is atomic)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        import tempfile

        return Path(tempfile.mkdtemp(prefix=".new-", dir=self.folder))

    def get(self, digest: str) -> Path | None:
        """The entry's folder, or None."""
        entry = self.folder / digest
        if not entry.is_dir():
            return None
        with contextlib.suppress(OSError):
            os.utime(entry)
        return entry

    def put(self, digest: str, folder: Path) -> Path:
        """Move ``folder`` in as the entry for ``digest`` and trim the cache; the entry's path."""
        entry = self.folder / digest
        with self._lock:
            try:
                if entry.exists():
                    shutil.rmtree(folder, ignore_errors=True)
                else:
                    os.replace(folder, entry)
            except OSError:
                return folder
            self._trim(keep=entry)
        return entry if entry.exists() else folder

    def _trim(self, keep: Path) -> None:
        entries = []
        for entry in self.folder.iterdir():
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            try:
                size = sum(f.stat().st_size for f in entry.iterdir())
                entries.append((entry.stat().st_mtime, size, entry))
            except OSError:
                continue
        total = sum(size for _, size, _ in entries)
        limit = disk_limit()
        for _, size, entry in sorted(entries):
            if total <= limit:
                break
            if entry == keep:
                continue
            shutil.rmtree(entry, ignore_errors=True)
            total -= size

    def entries(self) -> list[str]:
        """The digests held (tests and ``clear``)."""
        if not self.folder.is_dir():
            return []
        return sorted(e.name for e in self.folder.iterdir() if not e.name.startswith("."))

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# the progress of a long export


@dataclass(frozen=True)
class ExportProgress:
    """Where an export that takes seconds has got to: one event per stage, and a last one with
    ``done`` set (``error`` holds the reason when it failed)."""

    model: str  # the name the model is profiled under
    framework: str  # "tensorflow"
    stage: str  # "tracing", "converting", ... in words
    fraction: float  # 0..1, of the whole export
    elapsed_s: float
    done: bool = False
    error: str = ""


ProgressListener = Callable[[ExportProgress], None]
_listeners: list[ProgressListener] = []
_listeners_lock = threading.Lock()


def add_progress_listener(listener: ProgressListener) -> Callable[[], None]:
    """Call ``listener`` with every :class:`ExportProgress` (from the exporting thread; it must be
    quick). Returns the function that removes it."""
    with _listeners_lock:
        _listeners.append(listener)

    def remove() -> None:
        with _listeners_lock, contextlib.suppress(ValueError):
            _listeners.remove(listener)

    return remove


@contextlib.contextmanager
def progress_listener(listener: ProgressListener) -> Iterator[None]:
    """:func:`add_progress_listener` for the block."""
    remove = add_progress_listener(listener)
    try:
        yield
    finally:
        remove()


class ProgressReporter:
    """What a plug-in calls as its export goes: ``stage(...)`` then ``finish()``."""

    def __init__(self, model: str, framework: str) -> None:
        self.model = model
        self.framework = framework
        self.started = time.monotonic()
        self.fraction = 0.0

    def stage(self, stage: str, fraction: float) -> None:
        self.fraction = max(self.fraction, min(max(fraction, 0.0), 1.0))
        event = ExportProgress(self.model, self.framework, stage, self.fraction, self._elapsed())
        self._send(event)

    def finish(self, error: str = "") -> None:
        stage = "failed" if error else "done"
        fraction = self.fraction if error else 1.0
        self._send(
            ExportProgress(
                self.model, self.framework, stage, fraction, self._elapsed(), True, error
            )
        )

    def _elapsed(self) -> float:
        return time.monotonic() - self.started

    @staticmethod
    def _send(event: ExportProgress) -> None:
        with _listeners_lock:
            listeners = list(_listeners)
        for listener in listeners:
            with contextlib.suppress(Exception):  # a broken listener must not break an export
                listener(event)
