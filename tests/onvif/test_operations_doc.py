"""docs/onvif-operations.md stays true: every operation of every mounted SOAP service has a row
in its service's table, every test a row names exists and names the operation, and the matrix
letters match the rows of tests/onvif/test_bad_input_matrix.py."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from nvr.onvif.access import DEFAULT_POLICY, Level
from tests.onvif.conftest import OnvifServer
from tests.onvif.live import soap_mounts
from tests.onvif.test_bad_input_matrix import MATRIX

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "onvif-operations.md"
PENDING: frozenset[str] = frozenset()
"""Mounted services whose section is still to be written (remove a namespace once it is)."""

_SECTION = re.compile(r"^## .* — `(?P<namespace>[^`]+)`\s*$")
_REFERENCE = re.compile(r"`(?P<file>tests/[\w/]+\.py)::(?P<test>\w+)`")


@dataclass
class Row:
    operation: str
    not_offered: bool
    access: str
    tests: list[tuple[str, str]]
    matrix: set[str] = field(default_factory=set)


def parse(text: str) -> dict[str, dict[str, Row]]:
    """{service namespace: {operation: row}} of the document's tables."""
    sections: dict[str, dict[str, Row]] = {}
    rows: dict[str, Row] | None = None
    for line in text.splitlines():
        heading = _SECTION.match(line)
        if heading:
            rows = sections.setdefault(heading["namespace"], {})
            continue
        if line.startswith("## "):
            rows = None
        if rows is None or not line.startswith("| `"):
            continue
        name, access, tests, matrix = (c.strip() for c in line.strip("|").split("|"))
        operation = name.split("`")[1]
        references = [(m["file"], m["test"]) for m in _REFERENCE.finditer(tests)]
        rows[operation] = Row(
            operation, "(not offered)" in name, access, references, set(matrix.split())
        )
    return sections


@cache
def sources_of(path: str) -> dict[str, str]:
    """{test function name: its source} of a test module."""
    text = (ROOT / path).read_text()
    return {
        node.name: ast.get_source_segment(text, node) or ""
        for node in ast.parse(text).body
        if isinstance(node, ast.FunctionDef)
    }


def test_every_mounted_operation_is_documented(server: OnvifServer) -> None:
    sections = parse(DOC.read_text())
    for mount in soap_mounts(server.app):
        service = mount.endpoint.service
        if service.namespace in PENDING:
            continue
        rows = sections.get(service.namespace)
        assert rows is not None, f"no section for {service.namespace} in {DOC.name}"
        documented = set(rows)
        offered = {op.rpartition("}")[2] for op in service.operations}
        assert offered == documented, (service.namespace, offered ^ documented)
        for op in service.operations:
            row = rows[op.rpartition("}")[2]]
            assert row.access == service.access_by_operation[op].value, row


def test_referenced_tests_exist_and_name_their_operation() -> None:
    sections = parse(DOC.read_text())
    assert sections
    for rows in sections.values():
        for row in rows.values():
            assert row.tests or row.not_offered, f"{row.operation}: no test"
            for path, name in row.tests:
                assert (ROOT / path).is_file(), path
                source = sources_of(path).get(name)
                assert source is not None, f"{path}::{name} does not exist"
                assert re.search(rf"\b{row.operation}\b", source), f"{path}::{name}: {row}"
    for path, name in _REFERENCE.findall(DOC.read_text()):
        assert name in sources_of(path), f"{path}::{name} does not exist"


def test_matrix_letters_match_the_matrix() -> None:
    matrix_tests = sources_of("tests/onvif/test_bad_input_matrix.py")
    for letter_test in (
        "test_wrong_user_levels_are_refused",
        "test_missing_required_elements",
        "test_bad_input",
        "test_operations_not_offered",
    ):
        assert letter_test in matrix_tests
    for namespace, rows in parse(DOC.read_text()).items():
        for operation, documented in rows.items():
            row = MATRIX[namespace][operation]
            forbidden = any(
                Level(level) not in DEFAULT_POLICY[access]
                for level in Level
                for access in DEFAULT_POLICY
                if access.value == documented.access
            )
            expected = {
                "N" if row.unsupported else "",
                "L" if forbidden else "",
                "R" if not row.unsupported and row.body and row.missing else "",
                "B" if row.cases else "",
            } - {""}
            assert documented.matrix == expected, documented
            assert documented.not_offered == row.unsupported, documented
