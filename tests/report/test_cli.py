"""`ctsync report` as a user runs it: against `ctsync emulator serve` after an apply and a
provisioning cycle, in its own process; and bad input refused in one line, writing nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from ctsync.cli import cli
from tests.report.browser import external_references
from tests.report.conftest import Demo

pytestmark = pytest.mark.e2e

TENANT = re.compile(r"""data-tenant="([^"]*)\"""")
LINK = re.compile(r"""<path data-link="([^"]*)\"""")


def test_the_html_report_of_the_demo_is_self_contained_and_complete(demo: Demo) -> None:
    page = demo.html.read_text(encoding="utf-8")
    assert external_references(page) == []
    assert sorted(set(TENANT.findall(page))) == ["contoso", "fabrikam", "tailspin"]
    assert sorted(LINK.findall(page)) == [
        "contoso:fabrikam",
        "contoso:tailspin",
        "fabrikam:contoso",
    ]
    # The applied links ran a cycle; Contoso → Tailspin is not applied yet.
    assert "Succeeded" in page or "EntryLevelErrors" in page
    assert "no sync job yet" in page
    assert 'class="b not-set-up"' in page
    # Fabrikam → Contoso lost automatic redemption: quarantined, with the remedy.
    assert 'class="b quarantined"' in page
    assert "AzureDirectoryB2BManagementPolicyCheckFailure" in page
    assert "Remedy:" in page
    assert "No writes yet" not in page  # apply wrote the audit trail beside the config
    assert "/servicePrincipals" in page or "/applicationTemplates" in page


def test_markdown_and_json_go_to_stdout(demo: Demo) -> None:
    md = demo.report("--format", "markdown")
    assert md.returncode == 0, md.stderr
    assert md.stdout.startswith("## ctsync report")
    assert len(md.stdout) <= 65_536
    assert md.stdout.count("<details>") == 5
    as_json = demo.report("--format", "json", "--link", "contoso:fabrikam")
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert [link["link"] for link in data["links"]] == ["contoso:fabrikam"]
    link = data["links"][0]
    assert link["status"]["set_up"] is True
    assert link["activity"]["created"] >= 1
    assert data["audit"]["present"] is True
    assert data["logs"]["days"]


def test_an_unknown_link_is_one_line_and_writes_nothing(demo: Demo, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = CliRunner().invoke(
        cli, ["report", "-c", str(demo.config), "--link", "contoso:nowhere", "-o", str(out)]
    )
    assert result.exit_code == 1
    assert "no link 'contoso:nowhere'" in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "pdf"], "--format takes html, markdown or json, not 'pdf'"),
        (["--since", "yesterday"], "--since takes a duration like 24h"),
        (["--since", "0d"], "--since 0d is now"),
        (["-o", "."], "is a directory; name a file"),
        (["-o", "missing/r.html"], "the directory missing does not exist"),
    ],
    ids=["format", "since", "since-zero", "out-is-a-directory", "out-nowhere"],
)
def test_bad_input_is_one_clear_line_exit_1_and_nothing_written(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # No config at all: bad input is refused before the config or any tenant is read.
    result = CliRunner().invoke(cli, ["report", "-c", "nowhere.yaml", *args])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert message in lines[0]
    assert list(tmp_path.iterdir()) == []  # not even ctsync-report.html
