"""Schemathesis against /openapi.json on PostgreSQL: every operation, then chains of them.

Each operation gets generated requests, valid and invalid by its schema, and every answer
must be a non-5xx that /openapi.json declares (status, content type, headers, body), in
time. See harness.py for the checks and docs/reliability.md ("Fuzzing") for the figures.
"""

from __future__ import annotations

import pytest

from tests.fuzz.harness import FuzzCase, FuzzTarget, check_chains, check_operation, fuzz_schema
from tests.fuzz.profile import PROFILE

# Schemathesis's coverage phase draws from `random` inside a strategy; not ours to change.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)
BACKEND = "postgresql"
# A run narrowed by FUZZ_BACKENDS to the other backend defines no test here (no skip).
if BACKEND in PROFILE.budgets:
    schema = fuzz_schema(BACKEND)
    # The backend as a parameter of the fixture, which also puts it, and the operation, in
    # each test's id (pytest 9 builds the id of a Schemathesis test from its parameters).
    ON_BACKEND = pytest.mark.parametrize("fuzz_target", [BACKEND], indirect=True, scope="module")

    @schema.parametrize()
    @ON_BACKEND
    def test_every_operation_answers_as_documented(case: FuzzCase, fuzz_target: FuzzTarget) -> None:
        check_operation(case, fuzz_target)

    if PROFILE.budgets[BACKEND].stateful_scenarios:  # a profile without chains has no such test

        @ON_BACKEND
        def test_chains_of_operations_answer_as_documented(fuzz_target: FuzzTarget) -> None:
            check_chains(fuzz_target)
