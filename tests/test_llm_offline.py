"""The offline provider: extractive, deterministic, no network."""

from __future__ import annotations

from jobsvc.llm.offline import OfflineProvider, checklist_items, is_actionable, split_sentences

GUIDE = """Kitchen hygiene guidelines for Dr. Smith's team, issued Jan. 3.
All staff must wash their hands before handling food. The kitchen opens at 6 a.m. on weekdays.
Raw meat should be stored on the lowest shelf of the fridge. Our restaurant was founded in 1998.
Customers often praise our desserts.

- Label every container with the date it was opened
- Report any illness to the manager
"""


def test_sentences_respect_abbreviations_and_list_items():
    sentences = split_sentences(GUIDE)
    assert "Kitchen hygiene guidelines for Dr. Smith's team, issued Jan. 3." in sentences
    assert "The kitchen opens at 6 a.m. on weekdays." in sentences
    assert "Report any illness to the manager" in sentences


def test_summary_keeps_the_actionable_sentences_in_their_original_order():
    summary = OfflineProvider().summarize(GUIDE).text
    assert "must wash their hands" in summary
    assert "desserts" not in summary
    assert summary.index("wash their hands") < summary.index("lowest shelf")


def test_same_input_same_output():
    assert OfflineProvider().summarize(GUIDE) == OfflineProvider().summarize(GUIDE)


def test_checklist_lists_only_actions():
    summary = "Always lock the door. We moved offices in 2019. Never share passwords."
    checklist = OfflineProvider().make_checklist(summary)
    assert checklist.text == "- Always lock the door\n- Never share passwords"
    assert checklist.usage.total_tokens > 0


def test_checklist_falls_back_to_every_sentence_without_actions():
    assert checklist_items("The sky is blue. Grass is green.") == ["The sky is blue", "Grass is green"]


def test_short_input_is_its_own_summary():
    assert OfflineProvider().summarize("Wear gloves.").text == "Wear gloves."


def test_actionable_means_imperative_or_directive():
    assert is_actionable("Check the logs daily.")
    assert is_actionable("Visitors must sign in.")
    assert not is_actionable("The logs are stored for a year.")
    assert not is_actionable("1998")
