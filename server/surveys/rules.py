"""Survey rules: what a question may ask, and whether an answer fits the question it answers.

Why a module of its own: the sync push validates every ``record_answer`` against
the published survey version the phone was given (contract section G), and the
demo (or any future survey editor) must refuse the same questions the push
refuses. Pure functions, no database.

Special category data (UK GDPR article 9): no question may ask an individual for
their racial or ethnic origin, religious or philosophical beliefs, health,
sex life or sexual orientation, genetic or biometric data, or trade union
membership. Such question keys (or question texts naming them) are refused when
a survey is made, and an answer keyed so is refused at push (``not_allowed:``)
whatever survey it names. *Political opinion* is also article 9 data, but asking
voting intention is the purpose of a political canvass (processed under the
article 9(2)(d) / DPA 2018 schedule 1 part 2 paragraph 22 political-parties
condition), so it is deliberately NOT refused here; trade union membership is
refused because a canvass has no need of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from server.errors import InvalidInput

QUESTION_KINDS: Final[dict[str, str]] = {
    "choice": "choice",
    "single_choice": "choice",
    "multiple_choice": "multiple_choice",
    "scale": "scale",
    "yes_no": "yes_no",
    "yesno": "yes_no",
    "text": "text",
    "free_text": "text",
    "number": "number",
}
"""Question kinds this server knows (with accepted spellings) -> the canonical kind."""

MAX_TEXT_ANSWER = 2000
MAX_NUMBER = 10**9

SPECIAL_CATEGORY_TERMS: Final[tuple[str, ...]] = (
    "ethnic",
    "ethnicity",
    "race",
    "racial",
    "religion",
    "religious",
    "faith",
    "belief",
    "health",
    "disability",
    "disabled",
    "medical",
    "sexuality",
    "sexual",
    "sex_life",
    "gender_identity",
    "trans",
    "trade_union",
    "union_member",
    "genetic",
    "biometric",
    "nationality",
    "country_of_birth",
    "skin",
    "caste",
)
"""Words that make a question key or text ask for special category data (see the module docstring)."""

_PREFIXES: Final = ("ethnic", "religio", "disab", "sexual", "medic")
_WORD = re.compile(r"[a-z]+")


SPECIAL_CATEGORY_REASON: Final = "not_allowed: special category data is never recorded about a person (UK GDPR article 9)"
"""The one reason for a special category answer: it names neither the question nor the value, and the
push keeps no payload for it (a kept payload would be the very record the rule forbids)."""


class AnswerRefused(Exception):
    """An answer that does not fit its survey; ``reason`` starts with a contract prefix."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("-", "_"))


def names_special_category(text: str) -> str | None:
    """The special-category term a question key or text names, or None."""
    lowered = text.lower().replace("-", "_").replace(" ", "_")
    words = _words(text)
    for term in SPECIAL_CATEGORY_TERMS:
        if "_" in term:
            if term in lowered:
                return term
        elif term in words:
            return term
    for prefix in _PREFIXES:
        if any(w.startswith(prefix) for w in words):
            return prefix
    return None


def special_category_detail(key: str, term: str) -> str:
    """The words of a refusal: which question, which term, and the privacy rule it breaks."""
    return (
        f"Question {key!r} asks for special category data ({term}). Surveys may not ask a person's ethnicity or race, "
        "religion or beliefs, health or disability, sex life or sexual orientation, genetic or biometric data, or trade "
        "union membership: UK GDPR article 9 forbids recording it without a lawful condition, and Canvass never holds it "
        "about a person (ethnicity exists only as Census counts for areas)."
    )


def _texts(question: Mapping[str, Any]) -> Iterable[str]:
    """A question's key, text and label, and its translated texts."""
    for field in ("key", "text", "label"):
        value = question.get(field)
        if isinstance(value, str):
            yield value
    translations = question.get("translations")
    if isinstance(translations, Mapping):
        for translated in translations.values():
            if isinstance(translated, Mapping) and isinstance(translated.get("text"), str):
                yield translated["text"]


def refuse_special_category(questions: Iterable[Mapping[str, Any]]) -> None:
    """Raise ``InvalidInput`` if any question's key or text (in any language) asks for special category data."""
    for question in questions:
        for value in _texts(question):
            term = names_special_category(value)
            if term is not None:
                raise InvalidInput(special_category_detail(str(question.get("key")), term))


def validate_questions(questions: Iterable[Mapping[str, Any]]) -> None:
    """Check a survey's questions when it is made: known kinds, keys present, no special category."""
    questions = list(questions)
    refuse_special_category(questions)
    seen: set[str] = set()
    earlier: dict[str, Mapping[str, Any]] = {}
    for question in questions:
        key = question.get("key")
        if not isinstance(key, str) or not key:
            raise InvalidInput("Every survey question needs a key.")
        if key in seen:
            raise InvalidInput(f"Question key {key!r} appears twice.")
        seen.add(key)
        if question.get("kind") not in QUESTION_KINDS:
            raise InvalidInput(f"Question {key!r} has an unknown kind {question.get('kind')!r}.")
        kind = QUESTION_KINDS[str(question["kind"])]
        choices = _choices(question)
        if kind in ("choice", "multiple_choice") and not choices:
            raise InvalidInput(f"Question {key!r} needs at least one choice.")
        if len({str(c) for c in choices}) != len(choices):
            raise InvalidInput(f"Question {key!r} lists a choice twice.")
        if kind in ("scale", "number"):
            low, high = question.get("min"), question.get("max")
            if kind == "scale" and not choices and (low is None or high is None):
                raise InvalidInput(f"Scale question {key!r} needs a min and a max.")
            if low is not None and high is not None and int(low) >= int(high):
                raise InvalidInput(f"Question {key!r}: min must be below max.")
        _check_show_if(question, key, earlier)
        earlier[key] = question


def _check_show_if(question: Mapping[str, Any], key: str, earlier: Mapping[str, Mapping[str, Any]]) -> None:
    """Skip logic: ``show_if`` names an earlier question and answers it could be given."""
    show_if = question.get("show_if")
    if show_if is None:
        return
    if not isinstance(show_if, Mapping):
        raise InvalidInput(f"Question {key!r}: show_if must name a question and its answers.")
    other = show_if.get("question")
    if other == key:
        raise InvalidInput(f"Question {key!r} cannot depend on itself.")
    if other not in earlier:
        raise InvalidInput(f"Question {key!r} is shown only if {other!r} is answered so, but {other!r} is not an earlier question.")
    values = show_if.get("equals")
    values = values if isinstance(values, list) else [values]
    if not values:
        raise InvalidInput(f"Question {key!r}: show_if needs at least one answer of {other!r}.")
    target = earlier[str(other)]
    several = QUESTION_KINDS.get(str(target.get("kind"))) == "multiple_choice"
    for value in values:
        try:  # a multiple-choice question is shown-if when its answer includes the value
            validate_answer([target], str(other), [value] if several else value)
        except AnswerRefused:
            raise InvalidInput(f"Question {key!r} is shown if {other!r} is {value!r}, which is not an answer {other!r} takes.") from None


def _choices(question: Mapping[str, Any]) -> list[Any]:
    return list(question.get("choices") or question.get("options") or [])


def validate_answer(questions: Iterable[Mapping[str, Any]], key: str, value: Any) -> None:
    """Raise ``AnswerRefused`` unless ``value`` answers question ``key`` of the survey.

    Reasons: ``not_allowed:`` (special category key), ``unsupported:`` (a key, kind or
    choice this survey version does not know: a newer app; kept, re-applicable later),
    ``invalid:`` (a value of the wrong type or out of range).
    """
    term = names_special_category(key)
    if term is not None:
        raise AnswerRefused(SPECIAL_CATEGORY_REASON)
    question = next((q for q in questions if q.get("key") == key), None)
    if question is None:
        raise AnswerRefused(f"unsupported: question {key!r} is not in this survey version")
    kind = QUESTION_KINDS.get(str(question.get("kind")))
    if kind is None:
        raise AnswerRefused(f"unsupported: question kind {question.get('kind')!r}")
    choices = _choices(question)
    if kind == "text":
        if not isinstance(value, str) or len(value) > MAX_TEXT_ANSWER:
            raise AnswerRefused(f"invalid: question {key!r} takes text of at most {MAX_TEXT_ANSWER} characters")
    elif kind == "yes_no":
        if isinstance(value, bool):
            return
        if not isinstance(value, str):
            raise AnswerRefused(f"invalid: question {key!r} takes yes or no")
        if value not in (choices or ["Yes", "No"]):
            raise AnswerRefused(f"unsupported: {value!r} is not an answer to {key!r}")
    elif kind == "scale":
        if isinstance(value, bool):
            raise AnswerRefused(f"invalid: question {key!r} takes a number")
        if isinstance(value, str):
            if value in [str(c) for c in choices]:
                return
            try:
                value = int(value)
            except ValueError:
                raise AnswerRefused(f"invalid: question {key!r} takes a number") from None
        if not isinstance(value, int):
            raise AnswerRefused(f"invalid: question {key!r} takes a number")
        low = question.get("min", min((int(c) for c in choices), default=None) if choices else None)
        high = question.get("max", max((int(c) for c in choices), default=None) if choices else None)
        if (low is not None and value < int(low)) or (high is not None and value > int(high)):
            raise AnswerRefused(f"invalid: {value} is outside the scale of {key!r}")
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, int):
            raise AnswerRefused(f"invalid: question {key!r} takes a whole number")
        low, high = question.get("min"), question.get("max")
        if abs(value) > MAX_NUMBER or (low is not None and value < int(low)) or (high is not None and value > int(high)):
            raise AnswerRefused(f"invalid: {value} is outside the range of {key!r}")
    elif kind == "multiple_choice":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or len(set(value)) != len(value):
            raise AnswerRefused(f"invalid: question {key!r} takes a list of its choices")
        unknown = [v for v in value if v not in [str(c) for c in choices]]
        if unknown:
            raise AnswerRefused(f"unsupported: {unknown[0]!r} is not a choice of {key!r}")
    else:  # choice
        if not isinstance(value, str):
            raise AnswerRefused(f"invalid: question {key!r} takes one of its choices")
        if value not in [str(c) for c in choices]:
            raise AnswerRefused(f"unsupported: {value!r} is not a choice of {key!r}")
