"""The `fields` system parameter (partial responses): "items(id,etag),nextSyncToken", "a/b", "*"."""

from __future__ import annotations

from typing import Any

from . import errors

Selection = dict[str, "Selection | None"]  # None: the whole value


def parse(spec: str) -> Selection:
    selection, rest = _parse_list(spec.replace(" ", ""), 0)
    if rest != len(spec.replace(" ", "")) or not selection:
        raise _invalid(spec)
    return selection


def _invalid(spec: str) -> errors.ApiError:
    return errors.ApiError(400, "invalidParameter", f"Invalid field selection {spec}",
                           location_type="parameter", location="fields")


def _parse_list(spec: str, pos: int) -> tuple[Selection, int]:
    selection: Selection = {}
    while pos < len(spec):
        start = pos
        while pos < len(spec) and spec[pos] not in ",()":
            pos += 1
        names = spec[start:pos].split("/")
        if not all(names):
            raise _invalid(spec)
        sub: Selection | None = None
        if pos < len(spec) and spec[pos] == "(":
            sub, pos = _parse_list(spec, pos + 1)
            if pos >= len(spec) or spec[pos] != ")":
                raise _invalid(spec)
            pos += 1
        node = selection
        for name in names[:-1]:
            if name in node and node[name] is None:
                break  # the parent is already selected whole
            node = node.setdefault(name, {})  # type: ignore[assignment]
        else:
            _add(node, names[-1], sub)
        if pos < len(spec) and spec[pos] == ",":
            pos += 1
            continue
        break
    return selection, pos


def _add(node: Selection, name: str, sub: Selection | None) -> None:
    if name in node and (node[name] is None or sub is None):
        node[name] = None
    elif name in node:
        node[name] = {**node[name], **sub}  # type: ignore[dict-item]
    else:
        node[name] = sub


def apply(value: Any, selection: Selection | None) -> Any:
    if selection is None:
        return value
    if isinstance(value, list):
        return [apply(item, selection) for item in value]
    if not isinstance(value, dict):
        return value
    if "*" in selection:
        return {k: apply(v, selection["*"]) for k, v in value.items()}
    return {k: apply(value[k], sub) for k, sub in selection.items() if k in value}
