"""The loaded form of a framework model: a :class:`LoadedModel` with what the framework reports."""

from __future__ import annotations

from dataclasses import dataclass

from ei_widgets.frameworks import FrameworkInfo
from ei_widgets.loaders import LoadedModel


@dataclass(frozen=True)
class FrameworkModel(LoadedModel):
    """An ONNX export of a PyTorch or scikit-learn model, and the framework's own counts.

    ``source`` is the framework model itself; ``ort_source()`` serializes the export.
    """

    framework: FrameworkInfo | None = None

    def renamed(self, name: str | None) -> FrameworkModel:
        """The same export under another name (the cache is shared between names)."""
        if name is None or name == self.name:
            return self
        return FrameworkModel(
            model=self.model,
            name=name,
            kind=self.kind,
            path=self.path,
            size_bytes=self.size_bytes,
            complete=self.complete,
            warnings=self.warnings,
            source=self.source,
            framework=self.framework,
        )
