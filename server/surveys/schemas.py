"""API shapes of the survey editor: a survey version, its questions, door script, outcome codes and translations.

The same shapes are the CLI's import/export file format (YAML or JSON), so a file
exported from one campaign imports into another unchanged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from server.plain_text import PLAIN_TEXT_PATTERN, PlainName
from sync.protocol import OutcomeCode

QuestionKey = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$",
                                          description="Lower-case letters, digits and underscores; starts with a letter.")]
QuestionText = Annotated[str, msgspec.Meta(min_length=1, max_length=500, pattern=PLAIN_TEXT_PATTERN)]
Option = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=PLAIN_TEXT_PATTERN)]
LanguageCode = Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$", description="A BCP 47 language code such as cy, bn or pt-BR.")]
Script = Annotated[str, msgspec.Meta(max_length=5000, description="Read at the door; line breaks allowed.")]
Bound = Annotated[int, msgspec.Meta(ge=-1_000_000_000, le=1_000_000_000)]
QuestionKind = Literal["choice", "multiple_choice", "scale", "yes_no", "text", "number"]
"""choice is a single choice; text is free text; number a whole number."""


class QuestionTranslation(msgspec.Struct, forbid_unknown_fields=True):
    """A question's text (and its options' labels, in the same order) in another language."""

    text: QuestionText
    options: list[Option] | None = None


class ShowIf(msgspec.Struct, forbid_unknown_fields=True):
    """Skip logic: show the question only if an earlier question's answer is one of ``equals``."""

    question: QuestionKey
    equals: Annotated[list[str | int | bool], msgspec.Meta(min_length=1, max_length=50)]


class Question(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One question; answers are stored under ``key`` (keep keys stable across versions)."""

    key: QuestionKey
    text: QuestionText
    kind: QuestionKind
    required: bool = False
    options: Annotated[list[Option], msgspec.Meta(max_length=50)] = msgspec.field(default_factory=list)
    min: Bound | None = None
    max: Bound | None = None
    show_if: ShowIf | None = None
    translations: dict[LanguageCode, QuestionTranslation] = msgspec.field(default_factory=dict)


class OutcomeLabel(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """An outcome the phone offers at the door: a code of the sync protocol with the campaign's own words."""

    code: OutcomeCode
    label: QuestionText
    translations: dict[LanguageCode, QuestionText] = msgspec.field(default_factory=dict)


class SurveyTranslation(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """The survey's name and door script in another language."""

    name: PlainName | None = None
    script: Script | None = None


class SurveyBody(msgspec.Struct, forbid_unknown_fields=True):
    """A draft's content (create or replace); also the import/export file format."""

    name: PlainName
    questions: Annotated[list[Question], msgspec.Meta(max_length=100)] = msgspec.field(default_factory=list)
    script: Script | None = None
    outcomes: Annotated[list[OutcomeLabel], msgspec.Meta(max_length=9)] | None = None
    translations: dict[LanguageCode, SurveyTranslation] = msgspec.field(default_factory=dict)


class NewVersion(msgspec.Struct, forbid_unknown_fields=True):
    """Start a new draft version from a published or archived version (its content copied)."""

    from_survey_id: int


class SurveyOut(msgspec.Struct):
    """A survey version: drafts are editable; published versions are immutable and reach phones through sync."""

    id: int
    name: str
    version: int
    status: Literal["draft", "published", "archived"]
    is_active: bool
    """True for the one published version phones use now."""
    questions: list[Question]
    script: str | None
    outcomes: list[OutcomeLabel] | None
    translations: dict[str, SurveyTranslation]
    created_at: datetime
    published_at: datetime | None
    answers: int
    """How many answers were given under this version."""
