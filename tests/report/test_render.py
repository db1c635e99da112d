"""The report's renderers on hand-built data: escaping, no request leaving the page, one element
per tenant and per link from a pair to a 100-tenant mesh, and Markdown within GitHub's limit."""

from __future__ import annotations

import json
import re
import time

import pytest

from ctsync.ops.report import HEALTHS, LinkReport, Report
from ctsync.render.report import CSP, MARKDOWN_LIMIT, report_html, report_json, report_markdown
from tests.report.browser import external_references
from tests.report.build import HOSTILE, TAG, build_report, mesh, pair

TENANT = re.compile(r"""<g data-tenant="([^"]*)\"""")
LINK = re.compile(r"""<path data-link="([^"]*)\"""")


@pytest.fixture(scope="module")
def big() -> Report:
    return mesh(100)


@pytest.fixture(scope="module")
def big_html(big: Report) -> str:
    return report_html(big)


def test_tenant_data_shows_literally_and_never_runs() -> None:
    page = report_html(pair())
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # The only script element is the page's own.
    assert page.count("<script>") == 1
    assert TAG in page  # a tag is text, never an emoji
    assert "[bold]x[/bold]" in page  # nor markup
    assert "policy [bold]check[/bold] failed" in page


def test_the_page_makes_no_request_and_says_so_to_the_browser() -> None:
    page = report_html(pair())
    assert external_references(page) == []
    assert not re.search(r"https?://|(?:src|href)\s*=\s*[\"']?//|url\(\s*[\"']?//", page)
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' in page
    assert CSP == (
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
    )


def test_a_pair_has_one_node_per_tenant_and_one_arrow_per_link() -> None:
    report = pair()
    page = report_html(report)
    assert TENANT.findall(page) == ["contoso", "&lt;script&gt;alert(1)&lt;/script&gt;"]
    assert LINK.findall(page) == ["contoso:&lt;script&gt;alert(1)&lt;/script&gt;"]


def test_a_pair_shows_what_each_link_asks_holds_and_needs() -> None:
    page = report_html(pair())
    for text in (
        "member-sync",  # the config asks
        "group CTS-Pilot",
        "create, update",
        "Azure2Azure.abc.123",  # the tenants hold
        "42 s",  # the last cycle
        "EncounteredQuarantineException",  # quarantine and its remedy
        "run `ctsync apply` for the link",
        "user.sms-sign-in",  # preflight, with its fix
        "disable SMS sign-in",
        "tag the service principal",  # drift
        "ctsync destroy --duplicates",  # a problem's remedy
        "/servicePrincipals/1",  # the audit trail
    ):
        assert text in page, text
    # Every health has its colour in the legend, with a filter.
    for health in HEALTHS:
        assert f'data-health="{health}"' in page


def test_a_100_tenant_mesh_draws_every_tenant_and_link_quickly(big: Report) -> None:
    began = time.perf_counter()
    page = report_html(big)
    seconds = time.perf_counter() - began
    tenants, links = TENANT.findall(page), LINK.findall(page)
    assert len(tenants) == len(set(tenants)) == 100
    assert len(links) == len(set(links)) == 9_900
    assert set(links) == {link.key for link in big.links}
    assert len(page.encode()) < 10 * 1024 * 1024
    assert seconds < 5, seconds
    assert 'class="topo large crowded"' in page  # chords, healthy ones a faint haze
    assert external_references(page) == []


def test_a_hub_sits_in_the_middle_of_its_spokes() -> None:
    spokes = [f"spoke-{i:02d}" for i in range(30)]
    links = [LinkReport(key=f"hub:{s}", source="hub", target=s, asks={}) for s in spokes]
    page = report_html(build_report(["hub", *spokes], links))
    assert (
        '<g data-tenant="hub" class="n healthy hub" tabindex="0" transform="translate(0.0,0.0)">'
        in page
    )
    assert len(LINK.findall(page)) == 30


def test_a_large_fleet_lists_every_link_and_details_the_worst(big_html: str) -> None:
    assert big_html.count("<tr data-row=") == 9_900
    cards = big_html.count('<details class="card')
    assert 0 < cards <= 300
    assert "--format json` has the other" in big_html


def test_markdown_of_a_pair_escapes_data() -> None:
    text = report_markdown(pair())
    # Raw only inside code spans, which GitHub shows as they are.
    assert HOSTILE in text
    assert HOSTILE not in re.sub(r"`[^`]*`", "", text)
    assert "\\<script\\>alert(1)\\</script\\>" in text
    assert "\\[bold\\]x\\[/bold\\]" in text
    # No emoji code: a word joiner keeps `:link:` from becoming one.
    assert "ctsync:link:x" not in text
    assert "ctsync:\u2060link:x" in text
    assert "isaiah@\u2060contoso.com" in text  # nor a mention
    assert "<details>" in text
    assert text.count("<details>") == text.count("</details>") == 5


def test_markdown_of_a_mesh_fits_a_github_comment_and_says_it_was_cut(big: Report) -> None:
    text = report_markdown(big)
    assert len(text) <= MARKDOWN_LIMIT
    assert "Cut to fit a GitHub comment (65,536 characters)" in text
    assert text.count("<details>") == text.count("</details>") == 5
    # The links that need attention come first, so they survive the cut.
    assert "not set up" in text
    assert "paused" in text


def test_json_is_the_data_object(big: Report) -> None:
    data = json.loads(report_json(pair()))
    link = data["links"][0]
    assert link["target"] == HOSTILE
    assert link["health"] == "quarantined"
    assert link["drift"][0]["changes"][0]["new"] == [TAG]
    assert data["health"]["quarantined"] == 1
    assert data["audit"]["writes"][0]["path"] == "/servicePrincipals/1"
    assert len(json.loads(report_json(big))["links"]) == 9_900
