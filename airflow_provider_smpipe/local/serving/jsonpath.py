"""The JSONPath subset of batch transform ``InputFilter``/``OutputFilter``.

Supported, as SageMaker documents it: ``$`` (the whole record), child names (``$.features``,
``$['id']``), indices (``$[0]``, ``$[-1]``), and, in the last step only, unions and slices of them
(``$[0,-1]``, ``$[1:]``, ``$[0,5:]``, ``$['id','SageMakerOutput']``) and the wildcard (``$.*``, ``$[*]``).
A CSV row is a JSON array of its fields. Recursive descent (``..``), filter and script expressions
(``?()``, ``()``) and slice steps are refused with an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


class JsonPathError(ValueError):
    """A path outside the supported subset, or one that does not fit the record it is applied to."""


@dataclass(frozen=True)
class _Selector:
    """One selector inside brackets: a name, an index, a slice ``(start, end)`` or the wildcard."""

    name: str | None = None
    index: int | None = None
    start: int | None = None
    end: int | None = None
    is_slice: bool = False
    wildcard: bool = False

    @property
    def single(self) -> bool:
        return self.name is not None or self.index is not None


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_INDEX = re.compile(r"\s*(-?\d+)\s*")
_SLICE = re.compile(r"\s*(-?\d+)?\s*:\s*(-?\d+)?\s*")
_QUOTED = re.compile(r"""\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*""")


@dataclass(frozen=True)
class JsonPath:
    """A parsed path: :meth:`apply` selects from a decoded record."""

    text: str
    steps: tuple[tuple[_Selector, ...], ...]

    def apply(self, value: Any) -> Any:
        current = value
        for position, selectors in enumerate(self.steps):
            last = position == len(self.steps) - 1
            if len(selectors) == 1 and selectors[0].single:
                current = _select_one(self.text, current, selectors[0])
            elif last:
                current = _select_many(self.text, current, selectors)
            else:  # refused by parse(); kept as a guard
                raise JsonPathError(f"{self.text!r}: unions, slices and wildcards must be the last step")
        return current


def parse(text: str) -> JsonPath:
    """Parse ``text``; :class:`JsonPathError` names what is not supported."""
    path = text.strip()
    if not path.startswith("$"):
        raise JsonPathError(f"{text!r} is not a JSONPath: it must start with '$'")
    for token, what in (("..", "recursive descent '..'"), ("?(", "filter expressions '?()'"), ("@", "'@'")):
        if token in path:
            raise JsonPathError(f"{text!r}: {what} is not supported in batch transform filters")
    steps: list[tuple[_Selector, ...]] = []
    position = 1
    while position < len(path):
        char = path[position]
        if char == ".":
            if path.startswith(".*", position):
                steps.append((_Selector(wildcard=True),))
                position += 2
                continue
            match = _NAME.match(path, position + 1)
            if match is None:
                raise JsonPathError(f"{text!r}: expected a name after '.' at {path[position:]!r}")
            steps.append((_Selector(name=match.group()),))
            position = match.end()
        elif char == "[":
            end = _closing_bracket(text, path, position)
            steps.append(_bracket(text, path[position + 1 : end]))
            position = end + 1
        else:
            raise JsonPathError(f"{text!r}: unexpected {path[position:]!r}")
    for selectors in steps[:-1]:
        if not (len(selectors) == 1 and selectors[0].single):
            raise JsonPathError(
                f"{text!r}: unions, slices and wildcards are supported in the last step only "
                "(e.g. '$.features[1:]', not '$[1:].x')"
            )
    return JsonPath(text=text, steps=tuple(steps))


def _closing_bracket(text: str, path: str, start: int) -> int:
    quote: str | None = None
    position = start + 1
    while position < len(path):
        char = path[position]
        if quote:
            if char == "\\":
                position += 1
            elif char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "]":
            return position
        elif char == "(":
            raise JsonPathError(
                f"{text!r}: script expressions '()' are not supported in batch transform filters"
            )
        position += 1
    raise JsonPathError(f"{text!r}: unclosed '['")


def _bracket(text: str, inside: str) -> tuple[_Selector, ...]:
    if inside.strip() == "*":
        return (_Selector(wildcard=True),)
    selectors: list[_Selector] = []
    for part in _split_union(inside):
        quoted = _QUOTED.fullmatch(part)
        if quoted:
            raw = quoted.group(1) if quoted.group(1) is not None else quoted.group(2)
            selectors.append(_Selector(name=re.sub(r"\\(.)", r"\1", raw)))
            continue
        index = _INDEX.fullmatch(part)
        if index:
            selectors.append(_Selector(index=int(index.group(1))))
            continue
        if part.count(":") > 1:
            raise JsonPathError(
                f"{text!r}: slice steps ('[a:b:c]') are not supported in batch transform filters"
            )
        bounds = _SLICE.fullmatch(part)
        if bounds:
            start, end = bounds.groups()
            selectors.append(
                _Selector(
                    start=int(start) if start is not None else None,
                    end=int(end) if end is not None else None,
                    is_slice=True,
                )
            )
            continue
        raise JsonPathError(f"{text!r}: cannot read the selector {part.strip()!r}")
    if not selectors:
        raise JsonPathError(f"{text!r}: empty brackets")
    return tuple(selectors)


def _split_union(inside: str) -> list[str]:
    parts: list[str] = []
    current = ""
    quote: str | None = None
    for char in inside:
        if quote:
            current += char
            if char == quote and not current.endswith("\\" + quote):
                quote = None
        elif char in "'\"":
            quote = char
            current += char
        elif char == ",":
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _select_one(text: str, value: Any, selector: _Selector) -> Any:
    if selector.name is not None:
        if not isinstance(value, dict):
            raise JsonPathError(f"{text!r}: cannot select {selector.name!r} from a {_kind(value)}")
        if selector.name not in value:
            raise JsonPathError(f"{text!r}: the record has no attribute {selector.name!r}")
        return value[selector.name]
    assert selector.index is not None
    if not isinstance(value, list):
        raise JsonPathError(f"{text!r}: cannot index a {_kind(value)} with [{selector.index}]")
    if not -len(value) <= selector.index < len(value):
        raise JsonPathError(f"{text!r}: index {selector.index} is outside a record of {len(value)} fields")
    return value[selector.index]


def _select_many(text: str, value: Any, selectors: tuple[_Selector, ...]) -> Any:
    if isinstance(value, dict):
        if any(s.wildcard for s in selectors):
            return list(value.values())
        if any(s.name is None for s in selectors):
            raise JsonPathError(f"{text!r}: indices and slices select from arrays, the record is an object")
        return {s.name: _select_one(text, value, s) for s in selectors if s.name is not None}
    if isinstance(value, list):
        selected: list[Any] = []
        for selector in selectors:
            if selector.wildcard:
                selected.extend(value)
            elif selector.is_slice:
                selected.extend(value[selector.start : selector.end])
            elif selector.index is not None:
                selected.append(_select_one(text, value, selector))
            else:
                raise JsonPathError(f"{text!r}: names select from objects, the record is an array")
        return selected
    raise JsonPathError(f"{text!r}: cannot select several parts of a {_kind(value)}")


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "JSON object"
    if isinstance(value, list):
        return "JSON array (or CSV row)"
    return f"{type(value).__name__} value"
