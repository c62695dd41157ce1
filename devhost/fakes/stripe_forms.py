"""Stripe's form encoding, as stripe-python sends it: `metadata[k]=v`, `a[0]=x`, `a[b][c]=y`.

Values stay strings (Stripe converts them per parameter); dicts whose keys are all indices become
lists. Malformed keys are reported as ValueError naming the key.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")


def decode_form(body: str) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True, strict_parsing=False):
        match = _KEY.match(key)
        if match is None:
            raise ValueError(key)
        path = [match.group(1), *_PART.findall(match.group(2))]
        node = root
        for depth, part in enumerate(path):
            name = part if part != "" else str(len(node))  # "a[]" appends
            if depth == len(path) - 1:
                node[name] = value
                break
            child = node.setdefault(name, {})
            if not isinstance(child, dict):
                raise ValueError(key)
            node = child
    converted = _lists(root)
    assert isinstance(converted, dict)
    return converted


def _lists(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    items = {k: _lists(v) for k, v in value.items()}
    if items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items
