"""Framework-neutral helpers for naming layers: one clear error for a name that does not exist."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence


class UnknownLayerError(ValueError):
    """A layer name the model does not have; the message (and ``.valid``, ``.suggestion``) give
    the valid names and the closest match."""

    def __init__(self, name: str, valid: Sequence[str], model_name: str = "the model"):
        self.name = name
        self.valid = list(valid)
        matches = difflib.get_close_matches(str(name), self.valid, n=1, cutoff=0.5)
        self.suggestion = matches[0] if matches else None
        hint = f" Did you mean {self.suggestion!r}?" if self.suggestion else ""
        shown = self.valid if len(self.valid) <= 60 else self.valid[:30] + ["..."] + self.valid[-10:]
        super().__init__(f"{model_name} has no layer {name!r}.{hint} "
                         f"Valid names ({len(self.valid)}): {', '.join(shown)}")


def as_name_list(layers: str | Iterable[str]) -> list[str]:
    """``"conv1"`` -> ``["conv1"]``; a list stays a list. Empty lists and duplicates are refused."""
    names = [layers] if isinstance(layers, str) else list(layers)
    if not names:
        raise ValueError("expected at least one layer name, got an empty list")
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise TypeError(f"layer names must be strings, got {bad[0]!r} ({type(bad[0]).__name__})")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"layer names must be unique, got duplicates: {dupes}")
    return names


def call_key(name: str, call: int) -> str:
    """The key of a layer's ``call``-th output in one forward pass: ``name``, ``name_1``... (also
    the names of a Keras twin's layers, one per call)."""
    return name if call == 0 else f"{name}_{call}"
