"""The offline provider: extractive, deterministic, no network."""

from __future__ import annotations

from jobsvc.llm.offline import (
    OfflineProvider,
    checklist_items,
    is_actionable,
    split_sentences,
)

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


def _checklist_of(text: str) -> tuple[str, list[str]]:
    """The summary and the checklist items, made as the pipeline makes them: summary first."""
    provider = OfflineProvider()
    summary = provider.summarize(text).text
    items = [line.removeprefix("- ") for line in provider.make_checklist(summary).text.splitlines()]
    return summary, items


POLICY = """IT security policy for all employees.
Acme has protected its customers' data since 1998, and our security team is the best in the region.
Check the firewall logs every Monday. Rotate API keys every 90 days.
Lock your screen when you leave your desk.
All employees are required to submit access reviews by the 5th of each month. Report phishing within 1 hour.
Staff must not prop open the server room door. Never share passwords.
The security portal was redesigned in spring. We will never sell your data. Thank you for reading this policy.
"""


def test_a_prohibition_survives_the_summary_and_reaches_the_checklist():
    summary, items = _checklist_of(
        "Check the firewall every Monday. Rotate API keys every 90 days. Never share passwords."
    )
    assert "Never share passwords" in summary
    assert items == [
        "Check the firewall every Monday",
        "Rotate API keys every 90 days",
        "Never share passwords",
    ]

    summary, items = _checklist_of(POLICY)
    assert "Never share passwords" in summary
    assert "Never share passwords" in items


def test_staff_must_not_becomes_do_not_and_keeps_its_object():
    summary, items = _checklist_of(POLICY)
    assert "Staff must not prop open the server room door." in summary
    assert "Do not prop open the server room door" in items


def test_summary_keeps_every_deadline_and_number():
    summary, _ = _checklist_of(POLICY)
    for kept in ("every Monday", "every 90 days", "by the 5th of each month", "within 1 hour", "since 1998"):
        assert kept in summary


def test_items_are_imperatives_that_keep_the_object_of_the_action():
    _, items = _checklist_of(POLICY)
    assert "Submit access reviews by the 5th of each month" in items
    assert "Lock your screen when you leave your desk" in items
    assert checklist_items("Please send the signed form to HR within 5 days.") == [
        "Send the signed form to HR within 5 days"
    ]
    # A specific subject says who acts, and a passive says what: both keep the whole sentence.
    assert checklist_items("Visitors must sign in at reception. Raw meat should be stored low.") == [
        "Visitors must sign in at reception",
        "Raw meat should be stored low",
    ]


def test_a_rule_stated_as_a_lead_in_keeps_its_list_items():
    text = (
        "Welcome aboard, we are glad you are here.\nYou must bring:\n- your passport\n- two photos\n\nEnjoy."
    )
    _, items = _checklist_of(text)
    assert items == ["Bring: your passport; two photos"]

    text = "Cash handling.\nThe following are not permitted:\n- Accepting cheques\n- Giving cash back\n"
    _, items = _checklist_of(text)
    assert items == ["The following are not permitted: accepting cheques; giving cash back"]


def test_no_duplicate_items():
    summary = "Never share passwords! Lock the door. never  share passwords. Staff must lock the door."
    assert checklist_items(summary) == ["Never share passwords", "Lock the door"]


def test_background_and_marketing_stay_out_of_the_checklist():
    _, items = _checklist_of(POLICY)
    assert items == [
        "Check the firewall logs every Monday",
        "Rotate API keys every 90 days",
        "Lock your screen when you leave your desk",
        "Submit access reviews by the 5th of each month",
        "Report phishing within 1 hour",
        "Do not prop open the server room door",
        "Never share passwords",
    ]


ACTIONS = [
    "Immediately report any spill to the supervisor.",
    "If you feel unwell, tell the head chef before your shift.",
    "Please familiarise yourself with the fire exits.",
    "Deploy outside business hours.",
    "Only certified operators may use the crane.",
    "Smoking is prohibited on site.",
    "No food or drink is allowed in the lab.",
    "Harnesses are mandatory above 2 metres.",
    "Gloves are no substitute for hand hygiene; clean your hands between patients.",
]
STATEMENTS = [
    "We will never sell your data.",
    "You do not need to evacuate during the fire alarm test.",
    "Clean hands are the most effective way to prevent infections.",
    "Note: the canteen closes at 2 p.m.",
    "Travel and Expenses Policy",
    "Welcome to Brightline!",
]


def test_actions_of_every_form_are_actionable():
    assert [sentence for sentence in ACTIONS if not is_actionable(sentence)] == []


def test_statements_are_not_actionable_even_with_never_or_a_verb_first():
    assert [sentence for sentence in STATEMENTS if is_actionable(sentence)] == []
