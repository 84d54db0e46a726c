"""The survey editor's API: organisers write, reviewers read; canvassers get the published version through sync only."""

from __future__ import annotations

from litestar import Controller, get, post, put
from litestar.params import FromPath, JSONBody

from server.accounts.guards import ORGANISERS, REVIEWERS, require_role
from server.dependencies import CurrentUser, DbSession
from server.surveys import services
from server.surveys.schemas import NewVersion, SurveyBody, SurveyOut


class SurveyController(Controller):
    """Versioned surveys of one campaign: drafts, publishing, archiving."""

    path = "/api/campaigns/{campaign_id:int}/surveys"
    tags = ["surveys"]

    @get("/", guards=[require_role(*REVIEWERS)])
    async def list_surveys(self, campaign_id: FromPath[int], db_session: DbSession) -> list[SurveyOut]:
        """Every version of every survey, by name then version (drafts, published and archived)."""
        return await services.list_surveys(db_session, campaign_id)

    @get("/{survey_id:int}", guards=[require_role(*REVIEWERS)])
    async def get_survey(self, campaign_id: FromPath[int], survey_id: FromPath[int], db_session: DbSession) -> SurveyOut:
        """One survey version."""
        return await services.get_survey(db_session, campaign_id, survey_id)

    @post("/", guards=[require_role(*ORGANISERS)], status_code=201)
    async def create_draft(self, campaign_id: FromPath[int], data: JSONBody[SurveyBody], db_session: DbSession, user: CurrentUser) -> SurveyOut:
        """A new draft (the next version when the name exists); special category questions are refused (422)."""
        return await services.create_draft(db_session, campaign_id, data, user)

    @post("/versions", guards=[require_role(*ORGANISERS)], status_code=201)
    async def new_version(self, campaign_id: FromPath[int], data: JSONBody[NewVersion], db_session: DbSession, user: CurrentUser) -> SurveyOut:
        """A draft of the next version, copied from a published or archived version."""
        return await services.new_version(db_session, campaign_id, data.from_survey_id, user)

    @put("/{survey_id:int}", guards=[require_role(*ORGANISERS)])
    async def edit_draft(
        self, campaign_id: FromPath[int], survey_id: FromPath[int], data: JSONBody[SurveyBody], db_session: DbSession, user: CurrentUser
    ) -> SurveyOut:
        """Replace a draft's content (409 for a published or archived version: they are immutable)."""
        return await services.edit_draft(db_session, campaign_id, survey_id, data, user)

    @post("/{survey_id:int}/publish", guards=[require_role(*ORGANISERS)], status_code=200)
    async def publish(self, campaign_id: FromPath[int], survey_id: FromPath[int], db_session: DbSession, user: CurrentUser) -> SurveyOut:
        """Publish a draft: it becomes the version phones use (sent on their next pull); the previous one stops."""
        return await services.publish(db_session, campaign_id, survey_id, user)

    @post("/{survey_id:int}/archive", guards=[require_role(*ORGANISERS)], status_code=200)
    async def archive(self, campaign_id: FromPath[int], survey_id: FromPath[int], db_session: DbSession, user: CurrentUser) -> SurveyOut:
        """Archive a version: phones stop offering it; its answers are kept and still count."""
        return await services.archive(db_session, campaign_id, survey_id, user)
