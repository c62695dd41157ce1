"""Code rules checked on the source: HTTP types only in the HTTP layer, reviews and payments reading
bookings through the bookings repository, and one route-id helper instead of a copy per feature."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


def modules() -> list[Path]:
    return sorted(SHARED.rglob("*.py"))


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_only_the_http_layer_builds_http_requests_and_responses() -> None:
    outside = [
        path.relative_to(SHARED)
        for path in modules()
        if "azure.functions" in imported(path) and path.parent.name != "http" and path.name != "triggers.py"
    ]
    assert outside == []


@pytest.mark.parametrize("feature", ["reviews", "payments"])
def test_other_features_read_bookings_through_the_bookings_repository(feature: str) -> None:
    touching = re.compile(r"\b(FROM|JOIN|INTO|UPDATE)\s+bookings\b", re.IGNORECASE)
    offending = [
        path.relative_to(SHARED) for path in (SHARED / feature).glob("*.py") if touching.search(path.read_text())
    ]
    assert offending == []


def test_no_feature_defines_its_own_route_id_helper() -> None:
    copies = [
        path.relative_to(SHARED)
        for path in modules()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef) and node.name == "_id"
    ]
    assert copies == []
