"""`canvass surveys export|import|list` on both databases: a round trip through YAML and JSON, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from litestar import Litestar
from litestar.testing import AsyncTestClient
from typer.testing import CliRunner

from server.cli import app as cli_app
from tests.clirun import one_line_error, run_cli
from tests.conftest import World
from tests.test_surveys_api import doorstep


@pytest.mark.parametrize("verb", [["surveys", "export"], ["surveys", "import"], ["surveys", "list"]], ids=["export", "import", "list"])
def test_survey_verbs_have_help(verb: list[str]) -> None:
    result = CliRunner().invoke(cli_app, [*verb, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and "--campaign" in result.output


def test_the_guides_example_file_is_a_valid_survey() -> None:
    """The YAML example in docs/organisers-guide.md imports as it is (the docs stay true)."""
    import re

    from server.surveys.services import check_body, read_survey_file
    from tests.conftest import REPO_ROOT

    guide = (REPO_ROOT / "docs" / "organisers-guide.md").read_text()
    example = re.search(r"```yaml\n(.*?)```", guide, re.S)
    assert example is not None
    body = read_survey_file(example.group(1), "example.yaml")
    check_body(body)
    assert [q.key for q in body.questions] == ["vote", "poster", "household"]


async def test_export_then_import_round_trip(client: AsyncTestClient[Litestar], world: World, db_url: str, tmp_path: Path) -> None:
    base = f"/api/campaigns/{world.campaign_a}/surveys"
    draft = (await client.post(base, json=doorstep(), headers=world.auth("organiser"))).json()
    await client.post(f"{base}/{draft['id']}/publish", headers=world.auth("organiser"))
    campaign = str(world.campaign_a)

    exported = await run_cli(db_url, "surveys", "export", "--campaign", campaign)
    assert exported.code == 0, exported.err
    data = yaml.safe_load(exported.out)
    assert data["name"] == "Spring doorstep" and data["script"].startswith("Hello")
    assert data["questions"][1]["show_if"] == {"question": "vote", "equals": ["Green"]}
    assert data["questions"][0]["translations"]["cy"]["options"] == ["Gwyrdd", "Coch", "Glas"]

    # JSON to a file, edited, imported as version 2 and published: phones use it
    out = tmp_path / "survey.json"
    assert (await run_cli(db_url, "surveys", "export", "-c", campaign, "--survey", "Spring doorstep", "-o", str(out))).code == 0
    body = json.loads(out.read_text())
    assert body == data
    body["questions"].append({"key": "volunteer", "text": "Would you help us?", "kind": "yes_no"})
    out.write_text(json.dumps(body))
    imported = await run_cli(db_url, "surveys", "import", str(out), "-c", campaign, "--publish", "--as", "organiser@example.org")
    assert imported.code == 0, imported.err
    assert "v2 published, 7 questions" in imported.out
    listed = (await client.get(base, headers=world.auth("lead"))).json()
    assert [(s["version"], s["is_active"], len(s["questions"])) for s in listed] == [(1, False, 6), (2, True, 7)]

    # a YAML file imports as a draft of a new survey (not published)
    other = dict(data, name="Autumn")
    path = tmp_path / "autumn.yaml"
    path.write_text(yaml.safe_dump(other))
    result = await run_cli(db_url, "surveys", "import", str(path), "-c", campaign)
    assert result.code == 0, result.err
    assert "Autumn v1 draft" in result.out
    listing = await run_cli(db_url, "surveys", "list", "-c", campaign)
    assert "Autumn  v1  draft" in listing.out and "(phones use this)" in listing.out


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("bad.yaml", "name: x\nquestions: [\n  - key: a\n", "not valid YAML (line"),
        ("bad.json", "{\"name\": \"x\", ", "not valid JSON"),
        ("list.yaml", "- a\n- b\n", "must hold one survey"),
        ("shape.yaml", "name: x\nquestions:\n  - key: a\n    text: A\n    kind: dropdown\n", "questions[0].kind"),
        ("special.yaml", "name: x\nquestions:\n  - key: faith\n    text: Your faith?\n    kind: text\n", "special category"),
        ("skip.yaml", "name: x\nquestions:\n  - key: a\n    text: A\n    kind: yes_no\n    show_if: {question: b, equals: [true]}\n", "not an earlier question"),
    ],
)
async def test_bad_files_fail_in_one_line(world: World, db_url: str, tmp_path: Path, name: str, content: str, words: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    line = one_line_error(await run_cli(db_url, "surveys", "import", str(path), "-c", str(world.campaign_a)))
    assert words in line, line


async def test_missing_file_and_no_published_survey_fail_in_one_line(world: World, db_url: str, tmp_path: Path) -> None:
    assert "cannot read" in one_line_error(await run_cli(db_url, "surveys", "import", str(tmp_path / "none.yaml"), "-c", str(world.campaign_a)))
    assert "No published survey" in one_line_error(await run_cli(db_url, "surveys", "export", "-c", str(world.campaign_a)))
