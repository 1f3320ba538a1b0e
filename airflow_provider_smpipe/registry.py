"""Registries that find the code for one step kind in one layer, the way Airflow's providers manager finds hooks.

Each layer keeps one module per step kind in a package of its own (``compiler/steps/``, ``local/steps/``,
``local/api/``, ``triggers/step_results/``...). A module registers what it provides with a decorator; the
registry imports every module of its package the first time it is asked, so adding a step kind means adding
files, never editing a central switch.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Iterator

K = TypeVar("K", bound="Hashable")
V = TypeVar("V")


class Registry(Generic[K, V]):
    """
    Values of one kind keyed by step kind, registered by the modules of one package.

    :param what: What the values are, for error messages ("SDK step builder").
    :param package: The package whose modules register the values (imported on first lookup).
    :param skip: Modules of the package that hold shared code, not entries (never imported by discovery).
    """

    def __init__(self, what: str, package: str, skip: tuple[str, ...] = ()) -> None:
        self.what = what
        self.package = package
        self.skip = frozenset(skip)
        self._entries: dict[K, V] = {}
        self._discovered = False
        self._lock = threading.RLock()

    def register(self, key: K) -> Callable[[V], V]:
        """Decorator: register the decorated value under ``key`` (a second registration is a bug)."""

        def decorate(value: V) -> V:
            self.add(key, value)
            return value

        return decorate

    def add(self, key: K, value: V) -> None:
        """Register ``value`` under ``key``."""
        with self._lock:
            existing = self._entries.get(key)
            if existing is not None and existing is not value:
                raise RuntimeError(f"two {self.what}s registered for {key!r}: {existing!r} and {value!r}")
            self._entries[key] = value

    def _discover(self) -> None:
        if self._discovered:
            return
        with self._lock:
            if self._discovered:
                return
            package = importlib.import_module(self.package)
            for module in pkgutil.iter_modules(package.__path__):
                if not module.name.startswith("_") and module.name not in self.skip:
                    importlib.import_module(f"{self.package}.{module.name}")
            self._discovered = True

    def get(self, key: K) -> V | None:
        """The value registered for ``key``, or None."""
        self._discover()
        return self._entries.get(key)

    def __getitem__(self, key: K) -> V:
        value = self.get(key)
        if value is None:
            raise KeyError(f"no {self.what} registered for {key!r} (known: {sorted(map(str, self))})")
        return value

    def __contains__(self, key: object) -> bool:
        self._discover()
        return key in self._entries

    def __iter__(self) -> Iterator[K]:
        self._discover()
        return iter(list(self._entries))
