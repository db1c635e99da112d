"""The report in a real browser (headless Chromium): it draws something, its script runs
without an error, it makes no request, and after the script ran the DOM still holds one element
per tenant and per link — for the served demo and for a 100-tenant mesh."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ctsync.render.report import report_html
from tests.report.browser import chromium, distinct_colours, dump_dom, page_errors, screenshot
from tests.report.build import mesh
from tests.report.conftest import Demo

pytestmark = [
    pytest.mark.chromium,
    pytest.mark.e2e,
    pytest.mark.skipif(
        chromium() is None, reason="Chromium is not installed (scripts/ensure-chromium installs it)"
    ),
]

TENANT = re.compile(r"""<g [^>]*data-tenant="([^"]*)\"""")
LINK = re.compile(r"""<path [^>]*data-link="([^"]*)\"""")
SHOWN = re.compile(r"""<span id="shown"[^>]*>([^<]*)</span>""")


def test_the_demo_report_draws_a_picture(demo: Demo, tmp_path: Path) -> None:
    png = screenshot(demo.html, tmp_path / "report.png").read_bytes()
    assert len(png) > 20_000
    assert distinct_colours(png) >= 64, "the screenshot is (nearly) blank"


def test_the_demo_report_runs_without_error_or_request(demo: Demo) -> None:
    dom, log = dump_dom(demo.html)
    assert page_errors(log) == []
    assert sorted(TENANT.findall(dom)) == ["contoso", "fabrikam", "tailspin"]
    assert sorted(LINK.findall(dom)) == ["contoso:fabrikam", "contoso:tailspin", "fabrikam:contoso"]
    assert SHOWN.findall(dom) == ["3 of 3 links shown"]  # the page's script ran


def test_a_100_tenant_mesh_keeps_every_tenant_and_link(tmp_path: Path) -> None:
    page = tmp_path / "mesh.html"
    page.write_text(report_html(mesh(100)), encoding="utf-8")
    dom, log = dump_dom(page)
    assert page_errors(log) == []
    assert len(set(TENANT.findall(dom))) == 100
    assert len(set(LINK.findall(dom))) == 9_900
    assert SHOWN.findall(dom) == ["9900 of 9900 links shown"]


def test_a_request_or_a_script_error_would_be_caught(demo: Demo, tmp_path: Path) -> None:
    """The checks above can see a failure: a request slipped into the page is refused (and
    logged), and so is an error in its script."""
    page = tmp_path / "broken.html"
    leak = '<img src="https://example.invalid/pixel.png" alt="">'
    text = demo.html.read_text().replace("</main>", leak + "</main>")
    page.write_text(text.replace('"use strict";', '"use strict"; notDefined();', 1))
    _, log = dump_dom(page)
    errors = "\n".join(page_errors(log))
    assert "example.invalid" in errors, log[-2000:]
    assert "notDefined" in errors, log[-2000:]
