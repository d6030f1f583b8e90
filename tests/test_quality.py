"""The offline provider's checklists meet the quality targets on bench/quality/cases.json.

These are assertions on output quality (deterministic), not on timing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

EVALUATE = Path(__file__).resolve().parent.parent / "bench" / "quality" / "evaluate.py"


def _load_evaluate() -> ModuleType:
    # bench/ is not a package: load the script by its path.
    spec = importlib.util.spec_from_file_location("bench_quality_evaluate", EVALUATE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_offline_checklists_cover_the_expected_actions_without_duplicates_or_noise():
    overall = _load_evaluate().evaluate()["overall"]

    assert overall["cases"] >= 12
    assert overall["recall"] >= 0.9, overall
    assert overall["duplicates"] == 0, overall
    assert overall["unmatched_share"] <= 0.1, overall


def test_matching_needs_every_key_phrase_in_one_item():
    evaluate = _load_evaluate()
    case = {"name": "c", "actions": [["rotate", "api keys", "90 days"], ["never share", "passwords"]]}

    figures = evaluate.score_case(
        case, ["Rotate  API keys every 90 days", "Rotate API keys", "rotate api keys"]
    )

    assert (figures["matched"], figures["recall"]) == (1, 0.5)
    assert figures["missed_actions"] == [["never share", "passwords"]]
    assert (figures["unmatched"], figures["duplicates"]) == (2, 1)
