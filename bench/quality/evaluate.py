"""How good the offline provider's checklists are, measured on hand-written guideline texts.

Each case in `cases.json` is a guideline text and the actions a careful reader would put
on its checklist, each action given as key phrases. The provider runs both pipeline steps
(summary, then a checklist made from the summary alone, as a job does), and every case
reports:

- recall: expected actions matched by some checklist item / expected actions. An item
  matches an action when it contains every key phrase of it (case-insensitive, after
  collapsing whitespace);
- duplicates: items that repeat an earlier item once case, whitespace and punctuation
  are ignored;
- unmatched: the share of items that match no expected action (background sentences,
  or items that lost the object of their action).

    python bench/quality/evaluate.py            # a markdown table and the overall line
    python bench/quality/evaluate.py --details  # ... and the missed actions and unmatched items
    python bench/quality/evaluate.py --json     # every figure as JSON

`bench/` is not a package: the script puts the repository root on `sys.path` itself, and
other code (tests/test_quality.py) loads it by path with importlib.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CASES = Path(__file__).with_name("cases.json")

# Run as a script, Python puts this folder on sys.path, not the repository root.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from jobsvc.llm import LLMProvider, pipeline  # noqa: E402
from jobsvc.llm.offline import OfflineProvider  # noqa: E402

_PUNCTUATION = re.compile(r"[^\w\s]")


def load_cases(path: Path = CASES) -> list[dict[str, Any]]:
    """The cases: `name`, `domain`, `text` and `actions` (lists of key phrases)."""
    return json.loads(path.read_text(encoding="utf-8"))["cases"]


def _collapse(text: str) -> str:
    return " ".join(text.lower().split())


def _duplicate_key(item: str) -> str:
    return " ".join(_PUNCTUATION.sub(" ", item.lower()).split())


def matches(item: str, action: list[str]) -> bool:
    """True if the checklist item contains every key phrase of the action."""
    collapsed = _collapse(item)
    return all(_collapse(phrase) in collapsed for phrase in action)


def checklist_for(provider: LLMProvider, text: str) -> tuple[str, list[str]]:
    """The summary and the checklist items, made by the two pipeline steps in order."""
    summary = pipeline.summarize(provider, text).text
    checklist = pipeline.make_checklist(provider, summary).text
    return summary, [line.removeprefix("- ") for line in checklist.splitlines()]


def score_case(case: dict[str, Any], items: list[str]) -> dict[str, Any]:
    """The figures of one case, given the checklist items made for it."""
    actions = case["actions"]
    missed = [action for action in actions if not any(matches(item, action) for item in items)]
    unmatched = [item for item in items if not any(matches(item, action) for action in actions)]
    seen: set[str] = set()
    duplicates = []
    for item in items:
        key = _duplicate_key(item)
        if key in seen:
            duplicates.append(item)
        seen.add(key)
    return {
        "name": case["name"],
        "domain": case.get("domain", ""),
        "actions": len(actions),
        "matched": len(actions) - len(missed),
        "recall": (len(actions) - len(missed)) / len(actions) if actions else 1.0,
        "items": len(items),
        "duplicates": len(duplicates),
        "unmatched": len(unmatched),
        "unmatched_share": len(unmatched) / len(items) if items else 0.0,
        "missed_actions": missed,
        "unmatched_items": unmatched,
        "duplicate_items": duplicates,
    }


def evaluate(provider: LLMProvider | None = None, cases: list[dict[str, Any]] | None = None) -> dict:
    """Every case's figures and the overall ones (sums over all cases, not means of ratios)."""
    provider = provider or OfflineProvider()
    results = []
    for case in cases if cases is not None else load_cases():
        _, items = checklist_for(provider, case["text"])
        results.append(score_case(case, items))
    actions = sum(r["actions"] for r in results)
    matched = sum(r["matched"] for r in results)
    items = sum(r["items"] for r in results)
    unmatched = sum(r["unmatched"] for r in results)
    overall = {
        "cases": len(results),
        "actions": actions,
        "matched": matched,
        "recall": matched / actions if actions else 1.0,
        "items": items,
        "duplicates": sum(r["duplicates"] for r in results),
        "unmatched": unmatched,
        "unmatched_share": unmatched / items if items else 0.0,
    }
    return {"provider": provider.name, "model": provider.model, "overall": overall, "cases": results}


def markdown(report: dict, details: bool = False) -> str:
    """The report as a markdown table, the overall line, and optionally what went wrong."""
    lines = [
        "| Case | Domain | Actions | Matched | Recall | Items | Duplicates | Unmatched |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["cases"]:
        lines.append(
            f"| {r['name']} | {r['domain']} | {r['actions']} | {r['matched']} | {r['recall']:.0%} "
            f"| {r['items']} | {r['duplicates']} | {r['unmatched']} ({r['unmatched_share']:.0%}) |"
        )
    o = report["overall"]
    lines.append("")
    lines.append(
        f"Overall ({report['provider']}, {report['model']}, {o['cases']} cases): recall {o['recall']:.1%} "
        f"({o['matched']}/{o['actions']}), duplicates {o['duplicates']}, "
        f"unmatched {o['unmatched_share']:.1%} ({o['unmatched']}/{o['items']} items)"
    )
    if details:
        for r in report["cases"]:
            for action in r["missed_actions"]:
                lines.append(f"- {r['name']}: missed {action}")
            for item in r["unmatched_items"]:
                lines.append(f"- {r['name']}: unmatched item {item!r}")
            for item in r["duplicate_items"]:
                lines.append(f"- {r['name']}: duplicate item {item!r}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the report; the exit status is 0 whatever the figures are."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print every figure as JSON")
    parser.add_argument("--details", action="store_true", help="list missed actions and unmatched items")
    args = parser.parse_args(argv)
    report = evaluate()
    print(json.dumps(report, ensure_ascii=False, indent=2) if args.json else markdown(report, args.details))
    return 0


if __name__ == "__main__":
    sys.exit(main())
