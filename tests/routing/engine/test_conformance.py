"""The conformance suite: every case file is well-formed and every case passes."""

from __future__ import annotations

from collections import Counter

import pytest
from jsonschema import Draft202012Validator

from signalbox_client.engine.conformance import SUITE_VERSION, case_schema, check_case, iter_cases, load_suites

SUITES = load_suites()
CASES = list(iter_cases())


@pytest.mark.parametrize("name", sorted(SUITES))
def test_case_file__matches_case_schema(name):
    validator = Draft202012Validator(case_schema())
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(SUITES[name])]
    assert errors == []
    assert SUITES[name]["suite_version"] == SUITE_VERSION


def test_case_ids__are_unique_across_the_suite():
    counts = Counter(case["id"] for _, case in CASES)
    assert [cid for cid, n in counts.items() if n > 1] == []


def test_suite__has_at_least_90_cases_and_every_kind():
    assert len(CASES) >= 90
    assert {case["kind"] for _, case in CASES} == {"decide", "next_step", "validate"}


@pytest.mark.parametrize(("suite", "case"), CASES, ids=[case["id"] for _, case in CASES])
def test_conformance(suite, case):
    assert check_case(suite, case) == []
