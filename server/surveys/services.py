"""The survey editor's work: drafts, publishing (a new immutable version that reaches phones), archiving.

A survey is a name within a campaign; each version is a row of ``surveys``. A draft
is the only editable row and never reaches a phone. Publishing makes the draft the
campaign's one active version (every other version stops being active) and writes a
change row for each survey whose state changed, so phones pull the new version and
drop the old one; answers keep the ``survey_id`` they were given under and the push
validates them against that version, so an old phone still syncs.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.accounts.security import AuthUser
from server.audit import record_audit
from server.db.models import Answer, Survey, utcnow
from server.errors import ConflictError, InvalidInput, NotFound
from server.surveys.rules import QUESTION_KINDS, refuse_special_category, validate_questions
from server.surveys.schemas import OutcomeLabel, Question, SurveyBody, SurveyOut, SurveyTranslation
from server.sync.changes import record_change


def _question(raw: dict[str, Any]) -> Question:
    """A stored question as the API shape (older rows may spell kinds differently or carry extra fields)."""
    data = {k: v for k, v in raw.items() if k in Question.__struct_fields__}
    data["kind"] = QUESTION_KINDS.get(str(raw.get("kind")), "text")
    data["text"] = str(raw.get("text") or raw.get("label") or raw.get("key") or "?")
    if "options" not in data and raw.get("choices"):
        data["options"] = [str(c) for c in raw["choices"]]
    try:
        return msgspec.convert(data, Question)
    except msgspec.ValidationError:  # a row made before the editor's rules (a key like "Q1"): shown as it is
        return Question(key=str(raw.get("key")), text=data["text"], kind=data["kind"],
                        options=[str(o) for o in data.get("options") or []])


def survey_out(row: Survey, answers: int = 0) -> SurveyOut:
    """A row as the API shape."""
    return SurveyOut(
        id=row.id, name=row.name, version=row.version, status=row.status, is_active=row.is_active,  # type: ignore[arg-type]
        questions=[_question(q) for q in row.questions or []],
        script=row.script,
        outcomes=msgspec.convert(row.outcomes, list[OutcomeLabel]) if row.outcomes is not None else None,
        translations=msgspec.convert(row.translations or {}, dict[str, SurveyTranslation]),
        created_at=row.created_at, published_at=row.published_at, answers=answers,
    )


def check_body(body: SurveyBody) -> list[dict[str, Any]]:
    """The rules a survey must meet beyond its shape; returns the questions as stored."""
    questions = [msgspec.to_builtins(q) for q in body.questions]
    for translated in body.translations.values():
        refuse_special_category([{"key": "script", "text": translated.script or ""}])
    validate_questions(questions)
    for q in body.questions:
        for lang, tr in q.translations.items():
            if tr.options is not None and len(tr.options) != len(q.options):
                raise InvalidInput(f"Question {q.key!r}: the {lang!r} translation has {len(tr.options)} options for {len(q.options)}.")
    if body.outcomes is not None:
        codes = [o.code for o in body.outcomes]
        if len(set(codes)) != len(codes):
            raise InvalidInput("An outcome code is listed twice.")
    for text in (body.script or "", *(t.script or "" for t in body.translations.values())):
        if "\x00" in text:
            raise InvalidInput("The script may not contain NUL characters.")
    return questions


def _apply(row: Survey, body: SurveyBody, questions: list[dict[str, Any]]) -> None:
    row.name = body.name
    row.questions = questions
    row.script = body.script
    row.outcomes = [msgspec.to_builtins(o) for o in body.outcomes] if body.outcomes is not None else None
    row.translations = msgspec.to_builtins(body.translations) or None


async def _answer_counts(session: AsyncSession, ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    rows = await session.execute(select(Answer.survey_id, func.count()).where(Answer.survey_id.in_(ids)).group_by(Answer.survey_id))
    return {int(s): int(n) for s, n in rows.all()}


async def get_row(session: AsyncSession, campaign_id: int, survey_id: int) -> Survey:
    """The survey version, or 404 (also for another campaign's)."""
    row = await session.get(Survey, survey_id)
    if row is None or row.campaign_id != campaign_id:
        raise NotFound(f"No survey {survey_id} in this campaign.")
    return row


async def list_surveys(session: AsyncSession, campaign_id: int) -> list[SurveyOut]:
    """Every version of every survey of the campaign, by name then version."""
    rows = (await session.scalars(select(Survey).where(Survey.campaign_id == campaign_id).order_by(Survey.name, Survey.version))).all()
    counts = await _answer_counts(session, [r.id for r in rows])
    return [survey_out(r, counts.get(r.id, 0)) for r in rows]


async def get_survey(session: AsyncSession, campaign_id: int, survey_id: int) -> SurveyOut:
    row = await get_row(session, campaign_id, survey_id)
    return survey_out(row, (await _answer_counts(session, [row.id])).get(row.id, 0))


async def _next_version(session: AsyncSession, campaign_id: int, name: str) -> int:
    top = await session.scalar(select(func.max(Survey.version)).where(Survey.campaign_id == campaign_id, Survey.name == name))
    return int(top or 0) + 1


async def _refuse_second_draft(session: AsyncSession, campaign_id: int, name: str) -> None:
    draft = await session.scalar(select(Survey.id).where(Survey.campaign_id == campaign_id, Survey.name == name, Survey.status == "draft"))
    if draft is not None:
        raise ConflictError(f"Survey {name!r} already has a draft (id {draft}); edit it or publish it first.", survey_id=draft)


async def create_draft(session: AsyncSession, campaign_id: int, body: SurveyBody, user: AuthUser | None) -> SurveyOut:
    """A new draft: version 1 of a new name, or the next version of an existing one."""
    questions = check_body(body)
    await _refuse_second_draft(session, campaign_id, body.name)
    row = Survey(campaign_id=campaign_id, version=await _next_version(session, campaign_id, body.name), is_active=False, status="draft")
    _apply(row, body, questions)
    session.add(row)
    await session.flush()
    record_audit(session, user, "create", f"survey:{row.id}", campaign_id=campaign_id, row_count=1,
                 detail={"name": row.name, "version": row.version})
    await session.commit()
    return survey_out(row)


async def new_version(session: AsyncSession, campaign_id: int, from_id: int, user: AuthUser | None) -> SurveyOut:
    """A draft of the next version with the content of ``from_id``."""
    source = survey_out(await get_row(session, campaign_id, from_id))
    body = SurveyBody(name=source.name, questions=source.questions, script=source.script, outcomes=source.outcomes,
                      translations=source.translations)
    return await create_draft(session, campaign_id, body, user)


async def edit_draft(session: AsyncSession, campaign_id: int, survey_id: int, body: SurveyBody, user: AuthUser | None) -> SurveyOut:
    """Replace a draft's content; a published or archived version is immutable (409)."""
    row = await get_row(session, campaign_id, survey_id)
    if row.status != "draft":
        raise ConflictError(f"Survey {survey_id} is {row.status} and cannot change; start a new version from it.")
    questions = check_body(body)
    if body.name != row.name:
        if await session.scalar(select(Survey.id).where(Survey.campaign_id == campaign_id, Survey.name == body.name)) is not None:
            raise ConflictError(f"A survey named {body.name!r} already exists; a draft can only be renamed to a new name.")
        row.version = 1
    _apply(row, body, questions)
    record_audit(session, user, "update", f"survey:{row.id}", campaign_id=campaign_id, row_count=1,
                 detail={"name": row.name, "version": row.version})
    await session.commit()
    return survey_out(row)


async def publish(session: AsyncSession, campaign_id: int, survey_id: int, user: AuthUser | None) -> SurveyOut:
    """Make a draft the campaign's active version and send it (and the end of the previous one) to phones."""
    row = await get_row(session, campaign_id, survey_id)
    if row.status != "draft":
        raise ConflictError(f"Survey {survey_id} is already {row.status}; only a draft can be published.")
    if not row.questions:
        raise InvalidInput("A survey needs at least one question before it is published.")
    validate_questions(row.questions)
    was_active = (await session.scalars(select(Survey.id).where(Survey.campaign_id == campaign_id, Survey.is_active.is_(True)))).all()
    if was_active:
        await session.execute(update(Survey).where(Survey.id.in_(was_active)).values(is_active=False))
    row.status, row.is_active, row.published_at = "published", True, utcnow()
    for changed in [*was_active, row.id]:
        await record_change(session, campaign_id=campaign_id, entity="survey", entity_id=changed)
    record_audit(session, user, "publish", f"survey:{row.id}", campaign_id=campaign_id, row_count=1,
                 detail={"name": row.name, "version": row.version, "replaced": list(was_active)})
    await session.commit()
    await session.refresh(row)
    return survey_out(row)


async def archive(session: AsyncSession, campaign_id: int, survey_id: int, user: AuthUser | None) -> SurveyOut:
    """Retire a version: phones stop offering it (its answers stay and still count); a draft is archived unpublished."""
    row = await get_row(session, campaign_id, survey_id)
    if row.status == "archived":
        return survey_out(row)
    reached_phones = row.status == "published"
    row.status, row.is_active = "archived", False
    if reached_phones:
        await record_change(session, campaign_id=campaign_id, entity="survey", entity_id=row.id)
    record_audit(session, user, "archive", f"survey:{row.id}", campaign_id=campaign_id, row_count=1,
                 detail={"name": row.name, "version": row.version})
    await session.commit()
    await session.refresh(row)
    return survey_out(row, (await _answer_counts(session, [row.id])).get(row.id, 0))


def export_body(row: Survey) -> dict[str, Any]:
    """A version's content as the import/export file holds it (no ids, status or version)."""
    out = survey_out(row)
    body = SurveyBody(name=out.name, questions=out.questions, script=out.script, outcomes=out.outcomes, translations=out.translations)
    data: dict[str, Any] = msgspec.to_builtins(body)
    return {k: v for k, v in data.items() if v not in (None, {}, [])} | {"name": out.name, "questions": data["questions"]}


# ------------------------------------------------------------------ files (CLI import/export)


def read_survey_file(text: str, name: str) -> SurveyBody:
    """A survey file (YAML or JSON, told by the extension, else by content) as a draft's content; one-line errors."""
    import yaml

    lowered = name.lower()
    try:
        if lowered.endswith(".json"):
            data: Any = msgspec.json.decode(text.encode())
        else:
            data = yaml.safe_load(text)
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"{name} is not valid JSON: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidInput(f"{name} is not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{name} must hold one survey: a mapping with name and questions.")
    try:
        return msgspec.convert(data, SurveyBody)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"{name}: {exc}".replace("`$.", "`").replace("`$", "`survey")) from None


def write_survey_file(row: Survey, fmt: str) -> str:
    """A version's content as YAML or JSON text (importable as it is)."""
    import yaml

    body = export_body(row)
    if fmt == "json":
        return msgspec.json.format(msgspec.json.encode(body), indent=2).decode() + "\n"
    return str(yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100))


async def find_version(session: AsyncSession, campaign_id: int, ref: str | None) -> Survey:
    """A version by id or name (its newest), else the campaign's active version."""
    query = select(Survey).where(Survey.campaign_id == campaign_id)
    if ref is None:
        query = query.where(Survey.is_active.is_(True))
    elif ref.isdigit():
        query = query.where(Survey.id == int(ref))
    else:
        query = query.where(Survey.name == ref)
    row = (await session.scalars(query.order_by(Survey.version.desc()))).first()
    if row is None:
        raise NotFound("No published survey in this campaign (name one with --survey)." if ref is None else f"No survey {ref!r} in this campaign.")
    return row
