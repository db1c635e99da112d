"""A person signs in, as admins run ctsync by hand: the device code flow against `ctsync emulator
serve`, with Microsoft Graph Command Line Tools asking ctsync's scopes by name. With a persistent
token cache one sign-in lasts: the next runs ask nobody; and preflight checks the signed-in
person's roles before anything is written."""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctsync.config import set_tenant_keys
from tests.e2e.served import Served, start, stop
from tests.reliability.harness import Lab

pytestmark = pytest.mark.e2e

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.")
PROMPT = "enter the code"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = start(tmp_path_factory.mktemp("delegated"), "--replication-lag", "0")
    yield served
    stop(served)


@pytest.fixture
def lab(server: Served, tmp_path: Path) -> Lab:
    made = Lab(server, tmp_path)
    made.control("POST", "reset")
    made.control("POST", "seed", {"scenario": "demo"})
    # The token cache file lives in the home directory: this test's own.
    (tmp_path / "home").mkdir()
    made.env["HOME"] = str(tmp_path / "home")
    return made


def _signed_in_by_hand(lab: Lab, cache: str) -> Path:
    config = lab.config(links="contoso:fabrikam")
    text = set_tenant_keys(
        config.read_text(),
        name=str(config),
        settings={"contoso": {"auth": {"method": "device_code", "token_cache": cache}}},
    )
    config.write_text(text)
    return config


def test_one_sign_in_lasts_with_a_token_cache(lab: Lab, tmp_path: Path) -> None:
    config = _signed_in_by_hand(lab, "file")
    lab.control("POST", "signin/next", {"user": "lee@contoso.com"})

    first = lab.ctsync("plan", "-c", str(config), "--detailed-exitcode")
    assert first.returncode == 2, first.stderr
    assert PROMPT in first.stderr
    assert PROMPT not in first.stdout

    # Nobody approves anything from here on: a prompt would hang until the watchdog.
    again = lab.ctsync("plan", "-c", str(config), "--detailed-exitcode", watchdog=60)
    assert again.returncode == 2, again.stderr
    assert PROMPT not in again.stderr
    applied = lab.ctsync("apply", "-c", str(config), "--auto-approve", watchdog=60)
    assert applied.returncode == 0, applied.stderr
    assert lab.ctsync("plan", "-c", str(config), "--detailed-exitcode").returncode == 0

    # What is kept: the account record beside the config (no token in it), and MSAL's cache
    # file readable by its owner only.
    record = config.parent / ".ctsync" / "auth" / "contoso.json"
    assert "lee@contoso.com" in record.read_text()
    assert not JWT.search(record.read_text())
    caches = [p for p in (tmp_path / "home").rglob("*") if p.is_file()]
    assert caches
    for cache in caches:
        assert stat.S_IMODE(cache.stat().st_mode) & 0o077 == 0, cache
    for run in (first, again, applied):
        assert not JWT.search(run.stdout + run.stderr)


def test_without_a_cache_every_run_signs_in(lab: Lab) -> None:
    config = _signed_in_by_hand(lab, "none")
    for _ in range(2):
        lab.control("POST", "signin/next", {"user": "lee@contoso.com"})
        run = lab.ctsync("plan", "-c", str(config), "--detailed-exitcode")
        assert run.returncode == 2, run.stderr
        assert PROMPT in run.stderr
    assert not (config.parent / ".ctsync" / "auth" / "contoso.json").exists()


def test_preflight_names_the_role_a_signed_in_person_lacks(lab: Lab) -> None:
    config = _signed_in_by_hand(lab, "none")
    # An administrator consented for everyone once; Megan signs in and has no directory role.
    lab.control("POST", "signin/next", {"user": "lee@contoso.com", "consent": "organization"})
    assert lab.ctsync("plan", "-c", str(config)).returncode == 0
    lab.control("POST", "signin/next", {"user": "megan@contoso.com"})
    checked = lab.ctsync("preflight", "-c", str(config), "--output", "json")
    assert checked.returncode == 1, checked.stderr
    found = [f for f in checked.json()["findings"] if f["code"] == "permission.role-missing"]
    assert found, checked.stdout
    assert found[0]["tenant"] == "contoso"


BROWSER = """#!/bin/sh
# A stand-in for the person's browser: opens the sign-in page and, as its script would, posts
# the answer back to ctsync's loopback listener (response_mode form_post) — in the background,
# as a browser runs, so ctsync can answer it.
"{python}" - "$1" "{ca}" >>"{log}" 2>&1 <<'PY' &
import html, re, sys, httpx
page = httpx.get(sys.argv[1], verify=sys.argv[2], timeout=30)
action = re.search(r'action="([^"]+)"', page.text)
fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page.text))
back = httpx.post(html.unescape(action.group(1)), data=fields, timeout=30)
print(page.status_code, back.status_code)
PY
exit 0
"""


def test_browser_sign_in_comes_back_to_ctsync(lab: Lab, server: Served, tmp_path: Path) -> None:
    import sys

    browser = tmp_path / "browser"
    browser.write_text(
        BROWSER.format(
            python=sys.executable, ca=server.info["ca_cert"], log=tmp_path / "browser.log"
        )
    )
    browser.chmod(0o700)
    lab.env["BROWSER"] = str(browser)
    config = lab.config(links="contoso:fabrikam")
    config.write_text(
        set_tenant_keys(
            config.read_text(),
            name=str(config),
            settings={"contoso": {"auth": {"method": "interactive_browser"}}},
        )
    )
    lab.control("POST", "signin/next", {"user": "lee@contoso.com"})
    run = lab.ctsync("plan", "-c", str(config), "--detailed-exitcode", watchdog=20)
    assert run.returncode == 2, run.stderr
    assert lab.control("GET", "signin/pending")["next"] == []
