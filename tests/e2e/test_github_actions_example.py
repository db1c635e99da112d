"""examples/github-actions, run as GitHub would run it but against `ctsync emulator serve`: each
job's steps that call the script are read out of the workflow file and run in order, with a
federated token standing in for GitHub's (workload identity, no secret): the pull request's
plan, the merge's apply, and the daily watch — which fails once someone changes a tenant by
hand."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.e2e.served import Served, child_env, start, stop
from tests.e2e.test_signin import _auth
from tests.reliability.harness import Lab

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "github-actions"
POLICY = "/policies/crossTenantAccessPolicy"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = start(tmp_path_factory.mktemp("actions"), "--replication-lag", "0")
    yield served
    stop(served)


def _steps(job: str) -> list[str]:
    """The ``run:`` lines of ``job`` that call the script (as the repository would hold it)."""
    workflow: Any = YAML(typ="safe").load((EXAMPLE / "ctsync.yml").read_text())
    runs = [step.get("run", "") for step in workflow["jobs"][job]["steps"]]
    return [run for run in runs if "scripts/ctsync-ci.sh" in run]


def _repository(lab: Lab, tmp_path: Path) -> Path:
    """A checkout as the workflow sees it: ctsync.yaml at the root, the script in scripts/,
    every tenant signing in with a federated token (no secret anywhere)."""
    config = lab.config(links="contoso:fabrikam")
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(EXAMPLE / "ctsync-ci.sh", repo / "scripts" / "ctsync-ci.sh")
    for name in ("contoso", "fabrikam"):
        client = lab.served.tenant(name)
        _auth(
            config,
            name,
            f"{{method: workload_identity, client_id: {client['client_id']}, "
            f"token_file: {client['federated_token_file']}}}",
        )
    _auth(config, "tailspin", "{method: azure_cli}")
    (repo / "ctsync.yaml").write_text(config.read_text())
    return repo


def _run_job(repo: Path, job: str, summary: Path) -> list[subprocess.CompletedProcess[str]]:
    env = {
        **child_env(),
        "NO_COLOR": "1",
        "CTSYNC_CONFIG": "ctsync.yaml",
        "CTSYNC_OUT": "ctsync-out",
        "CTSYNC": f"{sys.executable} -m ctsync",
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    done = []
    for run in _steps(job):
        result = subprocess.run(
            ["bash", "-c", run],
            check=False,
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        done.append(result)
        if result.returncode != 0:
            break
    return done


def test_the_workflow_plans_applies_and_watches(server: Served, tmp_path: Path) -> None:
    lab = Lab(server, tmp_path)
    lab.control("POST", "reset")
    lab.control("POST", "seed", {"scenario": "demo"})
    repo = _repository(lab, tmp_path)
    summary = tmp_path / "summary.md"

    assert _steps("plan") == ["scripts/ctsync-ci.sh plan"]
    [plan] = _run_job(repo, "plan", summary)
    assert plan.returncode == 0, plan.stderr
    comment = (repo / "ctsync-out" / "plan.md").read_text()
    assert "Changes to apply on merge" in comment
    assert "+ create partner configuration for contoso" in comment
    assert comment in summary.read_text()

    applied = _run_job(repo, "apply", summary)
    assert [r.returncode for r in applied] == [0, 0], applied[-1].stderr
    assert "Apply complete" in (repo / "ctsync-out" / "apply.txt").read_text()

    [healthy] = _run_job(repo, "watch", summary)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "All links healthy, no drift." in (repo / "ctsync-out" / "watch.md").read_text()

    # Someone turns automatic redemption off in the portal: the next morning's run fails.
    contoso = lab.served.tenant("contoso")["tenant_id"]
    with lab.graph("fabrikam") as fabrikam:
        changed = fabrikam.patch(
            f"{POLICY}/partners/{contoso}",
            json={"automaticUserConsentSettings": {"inboundAllowed": False}},
        )
        assert changed.status_code == 204
    [drifted] = _run_job(repo, "watch", summary)
    assert drifted.returncode == 1
    watch = (repo / "ctsync-out" / "watch.md").read_text()
    assert "**Trouble: see below.**" in watch
    assert re.search(r"automaticUserConsentSettings\.inboundAllowed: false → true", watch)
    for path in (repo / "ctsync-out").iterdir():
        assert "eyJ" not in path.read_text(), path  # no token in anything CI keeps
