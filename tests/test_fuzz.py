"""Property-based fuzzing of the whole API from its own OpenAPI document (schemathesis).

Every generated request, valid or not, must get a documented status with a body that
matches the documented schema, and never a 5xx. The run prints how many requests it sent.
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation import GenerationMode

GENERATED: Counter[str] = Counter()
EXAMPLES_PER_OPERATION = 250


def _operations() -> list[str]:
    return ["POST /jobs/", "GET /jobs/{event_id}/"]


@pytest.mark.parametrize("label", _operations())
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_api_answers_as_documented_and_never_5xx(app, label, mode):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operation = schema.find_operation_by_label(label)
    assert operation is not None, f"{label} is not in the OpenAPI document"

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
    def fuzz(case: schemathesis.Case) -> None:
        GENERATED[f"{label} ({mode.value})"] += 1
        case.call_and_validate()

    fuzz()


def test_every_documented_operation_is_fuzzed(app):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    labels = {result.ok().label for result in schema.get_all_operations()}
    assert labels == set(_operations())
