"""The offline provider: deterministic, extractive, no network.

The pipeline makes the checklist from the summary alone, so a sentence the summary leaves
out is an action the checklist can never list. The summary therefore follows the rule the
OpenAI summary prompt states ("keep every obligation, prohibition, deadline and number;
leave out background and marketing"): it keeps, verbatim and in their original order,
every sentence that states an obligation, a prohibition, an instruction (an imperative,
also after "Please", "Always", an adverb or a leading "If ...," clause), a rule with a
limit, a deadline or a number, however many there are. Background that carries a number
("founded in 1998") is kept too: the rule says every number, and the checklist step
leaves it out again because it asks nothing.

Length budget: when those sentences leave room, the most informative other sentences
(word frequency, as in extractive-v1) fill the summary up to a third of the document's
sentences, at least 2 and at most MAX_SUMMARY_SENTENCES (5) in all; when the kept
sentences alone reach that budget, the summary is exactly them. Headings and lead-ins
("Before you leave:") fill the budget only when nothing else can. A sentence that repeats
an earlier one is kept once. Each paragraph, list item or heading starts a new line of the
summary, and list items get a full stop, so that the checklist step splits the summary
into the sentences the text had. A lead-in that states a rule, followed by list items that
are not instructions on their own ("The following are not permitted:" + "- Accepting
cheques"), becomes one sentence, so the items keep their "not permitted".

The checklist has one item per actionable sentence of the summary, deduplicated (case,
whitespace and punctuation ignored). An item is its sentence without the final full stop,
except that a leading "Please" is dropped before a verb, and a leading generic subject with
its modal ("Staff must X", "You should X", "Employees are required to X") is dropped when
an active verb follows; "Staff must not X" becomes "Do not X" and "Staff must never X"
becomes "Never X". Nothing after the verb is ever dropped. A specific subject ("Visitors
must sign in") or a passive ("Raw meat should be stored ...") keeps the whole sentence,
because the item would not say who acts, or what, without it.

Known limits: rules stated as plain descriptions ("Records are retained for 6 years",
"Ratios are one adult for every ten pupils") are kept in the summary when they carry a
number or a deadline, but are not recognised as actions, and so are not checklist items.
bench/quality/evaluate.py measures all this on hand-written guideline texts.

It is not a language model and says so in every job it produces (`provider: offline`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator

import sentencex

from jobsvc.llm.base import Completion, Usage

MODEL = "extractive-v2"
#: At most this many sentences in a summary, unless more must be kept (see the docstring).
MAX_SUMMARY_SENTENCES = 5

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
# A list item: "- x", "* x", "• x", "1. x", "2) x", "a) x" (or an en dash), optionally a "[ ]" checkbox.
_LIST_MARKER = re.compile(r"^\s*(?:[-*+•\u2013]|\d{1,3}[.)]|[a-zA-Z]\))\s+(?:\[[ xX]?\]\s+)?")
# Ends a sentence or a lead-in, closing quotes and brackets (straight or curly) included.
_TERMINATED = re.compile(r"[.!?:;…][\"')\]\u201d\u2019]*$")
# A final full stop that belongs to an abbreviation ("6 p.m.", "e.g.", "etc.") stays.
_ABBREVIATION_END = re.compile(r"(?:\b[a-zA-Z]\.){2,}$|\b(?:etc|approx|incl|Inc|Ltd|Co|No|St)\.$")
_NON_WORD = re.compile(r"[^\w\s]")
_UNIT_STOP = re.compile(r"\d\s?(?:km/h|mph|m/s|min|mins|h|hr|hrs)\.(?=\s+[A-Z])")

STOPWORDS = frozenset(
    """a about above after again all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few
    for from further had has have having he her here hers him his how i if in into is
    it its itself just me more most my no nor not of off on once only or other our ours
    out over own same she so some such than that the their theirs them then there these
    they this those through to too under until up very was we were what when where
    which while who whom why will with would you your yours""".split()
)
# Base forms of verbs that start an instruction. "Welcome" and "thank" are left out on
# purpose: they open greetings and closings ("Thank you for reading"), not instructions.
_IMPERATIVE_VERBS = frozenset(
    """abide abort abstain accept access accompany account acknowledge act activate adapt add
    address adhere adjust adopt advise affix agree alert align allocate allow amend analyse
    analyze announce anonymise anonymize answer apply appoint approve archive arrange arrive
    ask assemble assess assign assist attach attempt attend audit authenticate authorise
    authorize avoid await back backup bag bake balance bandage bathe be begin behave bend bin
    bleach block blow board boil bolt book brace brief bring brush buckle build bundle buy
    calculate calibrate call cancel capture carry catch cease certify chain change charge chase
    check chill choose chop circulate claim clarify classify clean cleanse clear click clip
    close coach code collaborate collect combine comment commit communicate compare compile
    complete comply configure confirm conform connect conserve consider consolidate consult
    contact contain continue contribute control convert convey cook cool coordinate copy
    correct count cover create cross crush cut deactivate deal debrief decide declare decline
    decontaminate decrypt defer define defrost delay delegate delete deliver demonstrate deny
    deploy deposit describe designate destroy detach detect determine develop dial dilute
    direct disable discard disclose disconnect discontinue discuss disinfect dismantle dispatch
    dispense display dispose distribute divert do document donate double download draft drain
    draw dress drill drink drive drop dry dust eat edit educate eliminate email embed empty
    enable encourage encrypt end endorse enforce engage enrol enroll enter equip erase escalate
    escort establish estimate evacuate evaluate examine exchange exclude execute exercise exit
    explain extend extinguish extract familiarise familiarize fasten fax feed fetch file fill
    find finish fit fix flag flush focus fold follow format forward freeze gather get give go
    gown greet grip ground guard guide halt hand handle hang hash heat help highlight hire hold
    honor honour hose identify ignore immobilise immobilize implement improve include increase
    indicate induct inform initial initiate insert inspect install instruct insure integrate
    intervene interview introduce investigate invite invoice isolate join jot justify keep
    label launch lay learn leave lend let licence license lift limit link list listen load
    locate lock log login logout look loosen lower lubricate mail maintain make manage mark
    mask measure meet merge message mind minimise minimize mix modify monitor mop mount move
    mute name navigate negotiate nominate note notify obey observe obtain offer omit onboard
    open operate order organise organize oversee pack pair park participate pass paste patch
    pause pay peel perform permit phone photocopy photograph pick pin pipette place plan plant
    plug polish position post pour practice practise prepare present preserve press prevent
    print prioritise prioritize proceed procure produce prohibit promote prompt proofread prop
    propose protect prove provide publish pull purchase purge push put qualify quarantine query
    queue quote rack raise read reassess rebase rebook reboot recall receive recharge reclaim
    recognise recognize recommend reconcile record recover rectify recycle redact redirect
    reduce refer refill refrain refresh refrigerate refuel refund register reheat reimburse
    reinforce reinstall reject relay release relocate rely remain remember remind remove rename
    renew rent reorder repair repeat replace replenish reply report represent request
    reschedule reserve reset resolve respect respond restart restrict resubmit resume retain
    retrieve retry return reuse reverse review revise revisit revoke ride rinse roll rotate
    route rub run sanitise sanitize save scan schedule scrub seal search seat secure seek
    segregate select sell send separate serve service set share sharpen shift show shower shred
    shut sign sit slow smoke soak solve sort sound speak specify spell split spot spray spread
    squash stabilise stabilize stack stamp stand staple start state stay steer step sterilise
    sterilize stick stock stop store strap stretch strip study submit subscribe substitute
    summarise summarize supervise supply support suspend swap sweep swipe switch sync tackle
    tag take talk tape taste teach tell test text thaw throw tidy tie tighten touch trace track
    train transfer translate transport travel treat trim troubleshoot try turn type uninstall
    unload unlock unpack unplug unsubscribe update upgrade upload use vacate vacuum validate
    vent ventilate verify visit volunteer wait wake walk warm warn wash watch wear weigh wipe
    withdraw work wrap write""".split()
)
# Words that may precede the verb of an instruction: "Please sign", "Always lock",
# "Only use", "Immediately report" (and any other adverb in -ly, up to two of them).
_LEADING_ADVERBS = frozenset("please kindly always also then first now only just still again".split())
# "If you feel unwell, report it": the instruction follows a leading clause and its comma.
_LEADING_CLAUSE_WORDS = frozenset(
    """if when whenever before after once until while during for on at in to where wherever
    unless since as upon between from within outside inside throughout whatever whether
    should""".split()
)
_AUXILIARIES = frozenset(
    "is are was were has have had will would can could may might must should shall".split()
)
# Words that cannot sit between a fronted noun and its verb ("Clean hands are" is a
# statement; "Check that the door is locked" and "Make sure you have" are instructions).
_FUNCTION_WORDS = STOPWORDS | frozenset("sure everyone anyone someone nothing".split())

# "You do not need to evacuate" grants leave; it neither obliges nor forbids.
_NOT_OBLIGED = re.compile(
    r"\b(?:do|does|did|will) not (?:need|have) to\b|\b(?:don't|doesn't|didn't|won't) (?:need|have) to\b"
    r"|\bneed not\b|\bneedn't\b|\bno need to\b|\bnot (?:required|necessary|mandatory|compulsory|obligatory)\b"
)
_PROHIBITION = re.compile(
    r"(?:^|[;:,(]\s*|\b(?:and|but|or|then)\s+)(?:please\s+)?(?:you\s+)?(?:do not|don't|never)\b"
    r"|\b(?:must not|mustn't|should not|shouldn't|shall not|may not|cannot|can not|can't|no one|nobody"
    r"|under no circumstances|prohibited|forbidden|banned|not (?:be )?(?:allowed|permitted)|not to)\b"
    r"|^no\s+[a-z]"
)
_OBLIGATION = re.compile(
    r"\b(?:must|should|shall|ought to|(?:need|needs|have|has) to|required?|requires|mandatory|compulsory"
    r"|obligatory|obliged|expected to|responsible for|(?:is|are) to be|responsibility (?:of|to)"
    r"|'s responsibility|duty to|(?:is|are) needed"
    r"|it is (?:essential|vital|important|crucial|imperative) (?:that|to))\b"
    # "Alcohol will not be reimbursed": a refusal is a rule about what not to do.
    r"|\bwill not be (?:reimbursed|refunded|paid|accepted|approved|covered|tolerated)\b"
    # "needs two approvals", but not "the needs of our clients".
    r"|(?<!the )(?<!our )(?<!your )(?<!their )\bneeds? (?:a|an|the|\d+|one|two|three|written|prior"
    r"|approval|approvals|sign-off|permission|authori[sz]ation|consent)\b"
)
# Rules that set a limit: "Only certified operators may use the crane", "The speed limit is 8 km/h".
_RESTRICTION = re.compile(
    r"\bonly\b[^.;]*\b(?:may|can)\b|\b(?:may|can) (?:be )?only\b|\blimits?\b|\blimited to\b|\brestricted\b"
    r"|\bmaximum\b|\bminimum\b|\bat most\b|\bno more than\b|\b(?:may|can)\b[^.;]*\bup to\b"
)
_UNITS = r"(?:working |business |calendar |school )?(?:seconds?|minutes?|hours?|days?|weeks?|months?|years?)"
_NUMBER_WORDS = (
    r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty"
    r"|sixty|ninety|hundred|thousand|million|billion|half|twice|dozen)"
)
_AMOUNT = rf"(?:\d+|a|an|{_NUMBER_WORDS})(?:[ -]{_NUMBER_WORDS})?"
# A time limit or a lead time obliges whoever it is set for: "the commander writes a review
# within 5 days", "the leader submits it four weeks before the trip".
_DUE_WITHIN = re.compile(
    rf"\bwithin {_AMOUNT} {_UNITS}\b|\b{_AMOUNT} {_UNITS} (?:before|in advance|prior to|ahead of)\b"
    r"|\bno later than\b"
)
_DAYS = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?"
_MONTHS = r"(?:january|february|march|april|may|june|july|august|september|october|november|december)"
_DEADLINE = re.compile(
    rf"{_DUE_WITHIN.pattern}|\b{_DAYS}\b|\b{_MONTHS} \d|\d {_MONTHS}\b|\bby (?:the )?(?:end|start|close"
    r"|beginning|noon|midnight|tomorrow|today|tonight|next|\d)"
    r"|\b(?:every|each) (?:other |\d+ |[a-z]+ )?(?:minute|hour|day|week|fortnight|month|quarter|year|morning"
    r"|afternoon|evening|night|shift|weekday|weekend|working day|business day|monday|tuesday|wednesday"
    r"|thursday|friday|saturday|sunday|time|use)s?\b"
    r"|\b(?:daily|nightly|hourly|weekly|fortnightly|monthly|quarterly|annually|yearly|biannually|biennially)\b"
    r"|\b(?:before|after|until|till|prior to|deadline|due|in advance|immediately|at once|promptly|asap"
    r"|as soon as possible|at all times|same day|on arrival|at the (?:start|end|beginning) of)\b"
    r"|\b(?:once|twice|\w+ times) (?:a|an|per|every|each)\b"
)
_NUMBER = re.compile(rf"\d|\b{_NUMBER_WORDS}\b|(?<!no )\bone\b(?! of\b| another\b)")
_TITLE_NOUNS = frozenset(
    """policy policies guidelines guideline rules procedure procedures handbook guide standard
    standards checklist overview introduction regulations instructions manual protocol code
    notes faq""".split()
)
# "Staff must X" -> "X": only a generic subject, the reader of the guideline, is dropped.
_GENERIC_SUBJECT_MODAL = re.compile(
    r"^(?:(?:all|every|each|the|our|any)\s+)?(?:you|we|staff|staff members|members of staff|employees?"
    r"|everyone|everybody|workers?|personnel|colleagues|team members|users?)\s+"
    r"(?:(?P<never>must never|should never|shall never|are never to|is never to)"
    r"|(?P<forbid>must not|mustn't|should not|shouldn't|shall not|may not|cannot|can not|can't"
    r"|(?:are|is) not (?:allowed|permitted) to)"
    r"|(?:must|should|shall|need to|needs to|have to|has to|will need to"
    r"|(?:are|is) (?:required|expected|obliged|asked) to))\s+(?P<rest>.+)$",
    re.IGNORECASE | re.DOTALL,
)
_LABEL = re.compile(r"^[a-z]+:\s+")
_POLITE = re.compile(r"^(?:please|kindly)\s+(?P<rest>.+)$", re.IGNORECASE | re.DOTALL)
_DONT = re.compile(r"(?:do not|don't|never)\b")
_PASSIVE_BE = re.compile(r"^be\s+\w+(?:ed|en|wn)\b", re.IGNORECASE)


def _blocks(text: str) -> Iterator[tuple[str, str]]:
    """Paragraphs, list items, headings and lead-ins ("Before you leave:"), each with its kind.

    The kind is "text", "item", "heading" or "lead-in" (a block that ends with a colon). A
    line that ends a sentence also ends its block when the next line does not go on in
    lower case: the summary puts each block on a line of its own, and sentencex alone
    would join "The limit is 8 km/h." and "Sound the horn" across that line break.
    """
    lines = text.splitlines()
    block: list[str] = []
    in_item = False
    for index, line in enumerate(lines):
        stripped = " ".join(line.split())
        starts_item = bool(_LIST_MARKER.match(line))
        # A list item goes on over indented lines; an unindented capitalised line starts anew.
        item_ends = in_item and not line[:1].isspace() and stripped[:1].isupper()
        if block and (not stripped or starts_item or stripped.startswith("#") or item_ends):
            yield " ".join(block), "item" if in_item else "text"
            block, in_item = [], False
        if not stripped:
            continue
        if stripped.startswith("#"):
            yield stripped.lstrip("#").strip() or stripped, "heading"
            continue
        following = " ".join(lines[index + 1].split()) if index + 1 < len(lines) else ""
        if not block and not starts_item and _is_heading_line(stripped, following):
            yield stripped, "heading"
            continue
        block.append(_LIST_MARKER.sub("", stripped, count=1) if starts_item else stripped)
        in_item = in_item or starts_item
        if stripped.endswith(":"):
            yield " ".join(block), "item" if in_item else "lead-in"
            block, in_item = [], False
        elif _TERMINATED.search(stripped) and following and not following[:1].islower():
            yield " ".join(block), "item" if in_item else "text"
            block, in_item = [], False
    if block:
        yield " ".join(block), "item" if in_item else "text"


def _is_heading_line(line: str, following: str) -> bool:
    """A short line with no final punctuation before a capitalised line: "Food safety rules"."""
    return (
        len(line.split()) <= 8
        and not _TERMINATED.search(line)
        and not line.endswith(",")
        and following[:1].isupper()
    )


def _split_after_units(sentence: str) -> list[str]:
    """sentencex reads "40 km/h." or "5 min." as an abbreviation, even before a new sentence."""
    parts, start = [], 0
    for match in _UNIT_STOP.finditer(sentence):
        parts.append(sentence[start : match.end()].strip())
        start = match.end()
    parts.append(sentence[start:].strip())
    return [part for part in parts if part]


def _segments(text: str) -> list[tuple[str, str, int]]:
    """The sentences of `text`, each with the kind and the number of the block it comes from."""
    segments = []
    for number, (block, kind) in enumerate(_blocks(text)):
        for sentence in sentencex.segment("en", block):
            segments.extend((part, kind, number) for part in _split_after_units(sentence))
    return segments


def split_sentences(text: str) -> list[str]:
    """Sentences of `text`, list items and headings counted as sentences, whitespace collapsed."""
    return [sentence for sentence, _, _ in _segments(text)]


def _words(sentence: str) -> list[str]:
    return [w for w in _WORD.findall(sentence.lower()) if w not in STOPWORDS]


def _lowered(sentence: str) -> str:
    return " ".join(sentence.replace("\u2019", "'").lower().split())


def _is_title(sentence: str) -> bool:
    """A heading such as "Travel and Expenses Policy": title case, no final stop, a title noun."""
    if re.search(r"[.!?]$", sentence):
        return False
    words = _WORD.findall(sentence)
    long_words = [w for w in words if len(w) >= 4]
    return (
        len(words) <= 12
        and len(long_words) >= 2
        and all(w[0].isupper() for w in long_words)
        and any(w.lower() in _TITLE_NOUNS for w in words)
    )


def _starts_with_verb(words: list[str]) -> bool:
    """True if the words open an instruction: an optional adverb or two, then a verb."""
    position = 0
    while position < min(len(words), 2) and (
        words[position] in _LEADING_ADVERBS
        # "Immediately report", but "Apply", "Supply" and "Rely" are verbs themselves.
        or (words[position].endswith("ly") and words[position] not in _IMPERATIVE_VERBS)
    ):
        position += 1
    if position >= len(words) or words[position] not in _IMPERATIVE_VERBS:
        return False
    # "Clean hands are ...", "Back pain is ...": a noun phrase and its verb, not an instruction.
    for offset in range(1, 4):
        following = words[position + offset : position + offset + 1]
        if following and following[0] in _AUXILIARIES:
            return any(w in _FUNCTION_WORDS for w in words[position + 1 : position + offset])
    return True


def _is_imperative(lowered: str) -> bool:
    """True if the sentence, or a clause after ";" or ":", or after a leading clause, instructs."""
    # A one-word label ("Note: ...", "Warning: ...") is no instruction; what follows it may be.
    clauses = re.split(r"[;:]\s+", _LABEL.sub("", lowered))
    first_words = _WORD.findall(clauses[0])
    if first_words and (first_words[0] in _LEADING_CLAUSE_WORDS or lowered.startswith("in case")):
        clauses.extend(clauses[0].split(", ")[1:2])
    return any(_starts_with_verb(_WORD.findall(clause)) for clause in clauses)


def is_actionable(sentence: str) -> bool:
    """True if the sentence asks someone to do (or not do) something."""
    lowered = _NOT_OBLIGED.sub(" ", _lowered(sentence))
    if not _WORD.search(lowered) or _is_title(sentence):
        return False
    return bool(
        _PROHIBITION.search(lowered)
        or _OBLIGATION.search(lowered)
        or _RESTRICTION.search(lowered)
        or _DUE_WITHIN.search(lowered)
        or _is_imperative(lowered)
    )


def must_keep(sentence: str) -> bool:
    """True if a summary has to keep the sentence: an action, a deadline or a number."""
    if _is_title(sentence):
        return False
    lowered = _lowered(sentence)
    return bool(_NUMBER.search(lowered) or _DEADLINE.search(lowered)) or is_actionable(sentence)


def _terminated(sentence: str) -> str:
    return sentence if _TERMINATED.search(sentence) else sentence + "."


def _normalized(sentence: str) -> str:
    return " ".join(_NON_WORD.sub(" ", sentence.lower()).split())


def _lowercased_start(fragment: str) -> str:
    # "Accepting cheques" joins a lead-in as "accepting cheques"; "IT support" stays as it is.
    return fragment[:1].lower() + fragment[1:] if fragment[1:2].islower() else fragment


def _units(text: str) -> list[tuple[str, bool, int]]:
    """The summary's candidate sentences: text, whether a heading or lead-in, block number.

    A lead-in that states a rule ("The following are not permitted:", "You must bring:")
    followed by list items that are not instructions on their own ("Accepting cheques")
    becomes one sentence, so that the rule and its objects stay together in the summary
    and in the checklist item made from it.
    """
    segments = _segments(text)
    units: list[tuple[str, bool, int]] = []
    index = 0
    while index < len(segments):
        sentence, kind, block = segments[index]
        if kind == "lead-in" and must_keep(sentence):
            end = index + 1
            while end < len(segments) and segments[end][1] == "item":
                end += 1
            items = [item for item, _, _ in segments[index + 1 : end]]
            if items and not any(map(is_actionable, items)):
                fragments = "; ".join(_lowercased_start(_without_final_stop(item)) for item in items)
                units.append((f"{sentence} {fragments}.", False, block))
                index = end
                continue
        is_heading = kind in {"heading", "lead-in"} or _is_title(sentence)
        units.append((sentence, is_heading or (kind != "item" and not _TERMINATED.search(sentence)), block))
        index += 1
    return units


def summarize_text(text: str, max_sentences: int = MAX_SUMMARY_SENTENCES) -> str:
    """Every sentence that must be kept, then the most informative others, in original order.

    Sentences of one paragraph are joined by spaces; each paragraph, list item, heading or
    lead-in starts a line, so that the checklist step splits the summary where the text split.
    """
    units = _units(text)
    if len(units) <= 2:
        kept = list(range(len(units)))
    else:
        unique, seen = [], set()
        for index, (sentence, _, _) in enumerate(units):
            if (key := _normalized(sentence)) not in seen:
                seen.add(key)
                unique.append(index)
        kept = [i for i in unique if must_keep(units[i][0])]
        room = min(max_sentences, max(2, math.ceil(len(units) / 3))) - len(kept)
        if room > 0:
            frequencies = Counter(w for sentence, _, _ in units for w in _words(sentence))
            top = max(frequencies.values(), default=1)

            def rank(index: int) -> tuple[bool, float, int]:
                sentence, is_heading, _ = units[index]
                words = _words(sentence)
                weight = sum(frequencies[w] / top for w in words) / math.sqrt(len(words)) if words else 0.0
                # Headings and lead-ins say little on their own: they fill only what nothing else can.
                return is_heading, -weight, index

            kept_set = set(kept)
            kept += sorted((i for i in unique if i not in kept_set), key=rank)[:room]
    summary, previous_block = "", None
    for index in sorted(kept):
        sentence, _, block = units[index]
        separator = "" if previous_block is None else " " if block == previous_block else "\n"
        summary += separator + _terminated(sentence)
        previous_block = block
    return summary


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def _without_final_stop(sentence: str) -> str:
    sentence = sentence.strip()
    if _ABBREVIATION_END.search(sentence):
        return sentence
    return sentence.rstrip(" .;:,!") or sentence


def checklist_item(sentence: str) -> str:
    """The sentence as a checklist item: an instruction where that loses nothing but who."""
    sentence = _without_final_stop(sentence)
    polite = _POLITE.match(sentence)
    if polite and (
        _starts_with_verb(_WORD.findall(_lowered(polite["rest"]))) or _DONT.match(_lowered(polite["rest"]))
    ):
        sentence = _capitalized(polite["rest"])
    obliged = _GENERIC_SUBJECT_MODAL.match(sentence)
    if not obliged:
        return sentence
    rest = obliged["rest"]
    # After a modal comes a verb, so the rest reads as an instruction; a passive one
    # ("be trained") would not, and keeps its subject.
    if not re.match(r"[a-z]", rest) or _PASSIVE_BE.match(rest):
        return sentence
    if obliged["never"]:
        return f"Never {rest}"
    if obliged["forbid"]:
        return f"Do not {rest}"
    return _capitalized(rest)


def checklist_items(summary: str) -> list[str]:
    """One item per actionable sentence of the summary (every sentence if none is), no repeats."""
    sentences = split_sentences(summary)
    actionable = [s for s in sentences if is_actionable(s)] or sentences
    items, seen = [], set()
    for sentence in actionable:
        item = checklist_item(sentence)
        # An item of punctuation alone ("•") is compared as it is, not as an empty string.
        key = _normalized(item) or item
        if key not in seen:
            seen.add(key)
            items.append(item)
    return items


def _usage(prompt: str, completion: str) -> Usage:
    # Words stand in for tokens so that offline jobs report comparable magnitudes.
    prompt_tokens, completion_tokens = len(prompt.split()), len(completion.split())
    return Usage(prompt_tokens, completion_tokens, prompt_tokens + completion_tokens)


class OfflineProvider:
    """Extractive summary and rule-based checklist; deterministic and free."""

    name = "offline"
    model = MODEL

    def summarize(self, text: str) -> Completion:
        """Every action, deadline and number of `text`, then its most informative other sentences."""
        summary = summarize_text(text)
        return Completion(summary, _usage(text, summary))

    def make_checklist(self, summary: str) -> Completion:
        """A `- item` line per actionable sentence of the summary."""
        checklist = "\n".join(f"- {item}" for item in checklist_items(summary))
        return Completion(checklist, _usage(summary, checklist))
