"""The PowerShell a plan is emitted as (`plan --format powershell`, `destroy --format
powershell`) is fit to run: every cmdlet and parameter is one Microsoft documents
(`powershell_cmdlets.py`), quotes and brackets balance, a new service principal is waited for
before the job is created, each tenant is asked for only the scopes its steps need, and a
sovereign cloud's tenant signs in to its environment."""

from __future__ import annotations

import re
from pathlib import Path

from ctsync.engine import Session, execute, make_destroy_plan, make_plan
from ctsync.render.powershell import plan_powershell
from tests.engine.conftest import Bench, make_bench

from .powershell_cmdlets import CMDLETS, COMMON


def _strip_strings(line: str) -> str:
    """The line without its string literals and comments (their text is data, not code)."""
    line = re.sub(r"'(?:[^']|'')*'", "''", line)
    line = re.sub(r'"[^"]*"', '""', line)
    return line.split("#", 1)[0] if not line.lstrip().startswith("#Requires") else ""


_TOKEN = re.compile(
    r"(?P<cmdlet>(?<![\w$.-])[A-Z][A-Za-z]+-[A-Z][A-Za-z]+\b)"
    r"|(?P<param>(?<![\w$'\"])-[A-Z][A-Za-z]+\b)"
    r"|(?P<open>[({])|(?P<close>[)}])|(?P<end>[|;])"
)


def check_script(script: str) -> list[str]:
    """Problems: unknown cmdlets, parameters a cmdlet lacks, unbalanced brackets or quotes.

    A parameter belongs to the last cmdlet at its bracket depth (``(... | ConvertTo-Json
    -Depth 5) -ContentType …``: -Depth is ConvertTo-Json's, -ContentType the outer one's)."""
    problems: list[str] = []
    owner: list[str | None] = [None]
    for number, raw in enumerate(script.splitlines(), 1):
        if raw.lstrip().startswith("#"):
            continue  # a comment (the step's summary, in words)
        if raw.count("'") % 2 or raw.count('"') % 2:
            problems.append(f"{number}: unbalanced quotes: {raw}")
        if len(owner) == 1:
            owner = [None]  # a new statement (inside brackets, one goes on over lines)
        for token in _TOKEN.finditer(_strip_strings(raw)):
            kind, text = token.lastgroup, token.group()
            if kind == "open":
                owner.append(None)
            elif kind == "close" and len(owner) > 1:
                owner.pop()
            elif kind == "end":
                owner[-1] = None
            elif kind == "cmdlet":
                if text not in CMDLETS:
                    problems.append(f"{number}: unknown cmdlet {text}")
                owner[-1] = text
            elif kind == "param" and owner[-1] in CMDLETS:
                cmdlet = str(owner[-1])
                if text[1:] not in CMDLETS[cmdlet] | COMMON:
                    problems.append(f"{number}: {cmdlet} has no {text}")
    text = _strip_strings_all(script)
    for opening, closing in ("()", "{}", "[]"):
        if text.count(opening) != text.count(closing):
            problems.append(f"unbalanced {opening}{closing}")
    return problems


def _strip_strings_all(script: str) -> str:
    return "\n".join(_strip_strings(line) for line in script.splitlines())


def _applied_bench(tmp_path: Path) -> Bench:
    return make_bench(tmp_path, links=[("contoso", "fabrikam"), ("contoso", "tailspin")])


def _scripts(bench: Bench) -> tuple[str, str]:
    async def go(session: Session) -> tuple[str, str]:
        desired = session.desired
        ids = {name: t.tenant_id for name, t in desired.tenants.items()}
        setup = await make_plan(desired, session)
        apply_script = plan_powershell(setup, tenant_ids=ids)
        assert (await execute(setup, session)).ok
        teardown = await make_destroy_plan(desired, session, keep_users=False)
        return apply_script, plan_powershell(teardown, tenant_ids=ids)

    return bench.run(go)


def test_apply_and_destroy_scripts_use_only_documented_cmdlets(tmp_path: Path) -> None:
    apply_script, destroy_script = _scripts(_applied_bench(tmp_path))
    assert check_script(apply_script) == []
    assert check_script(destroy_script) == []
    assert "Remove-MgServicePrincipalSynchronizationJob" in destroy_script
    assert "Remove-MgPolicyCrossTenantAccessPolicyPartner" in destroy_script
    assert "deprovision the unassigned users" in destroy_script


def test_the_job_waits_for_the_new_service_principal(tmp_path: Path) -> None:
    apply_script, _ = _scripts(_applied_bench(tmp_path))
    lines = apply_script.splitlines()
    job = next(
        i for i, line in enumerate(lines) if "New-MgServicePrincipalSynchronizationJob" in line
    )
    made = next(
        i for i, line in enumerate(lines) if "Invoke-MgInstantiateApplicationTemplate" in line
    )
    waits = [
        i for i, line in enumerate(lines) if "Get-MgServicePrincipal -ServicePrincipalId" in line
    ]
    assert any(made < w < job for w in waits)


def test_each_tenant_asks_only_for_what_its_steps_need(tmp_path: Path) -> None:
    apply_script, _ = _scripts(_applied_bench(tmp_path))
    connects = {
        line.split("'")[1]: line.split("-Scopes '")[1].split("'")[0]
        for line in apply_script.splitlines()
        if line.startswith("Connect-MgGraph")
    }
    bench_ids = {
        t.tenant_id: name for name, t in _applied_bench(tmp_path / "b").desired().tenants.items()
    }
    by_name = {bench_ids[tid]: scopes for tid, scopes in connects.items()}
    assert by_name["fabrikam"] == "Policy.ReadWrite.CrossTenantAccess"
    assert "Synchronization.ReadWrite.All" in by_name["contoso"]
    assert "AppRoleAssignment.ReadWrite.All" in by_name["contoso"]


def test_a_sovereign_cloud_signs_in_to_its_environment() -> None:
    from ctsync.engine.model import Plan, Step

    step = Step("x", "gov", "partner", "create", "create partner", params={"body": {}})
    plan = Plan("apply", "c.yaml", "h", "l", (step,))
    script = plan_powershell(plan, tenant_ids={"gov": "t-id"}, clouds={"gov": "usgov"})
    assert "Connect-MgGraph -TenantId 't-id' -Environment USGov -Scopes" in script
    assert check_script(script) == []


def test_the_check_catches_what_would_not_run() -> None:
    bad = (
        "Start-MgServicePrincipalSynchronizationJob -ServicePrincipalId $sp -JobId 'x'\n"
        "New-MgSynchronizationJob -ServicePrincipalId $sp\n"
        "$x = (Get-MgServicePrincipal -ServicePrincipalId $sp -Tags @('a')\n"
    )
    problems = check_script(bad)
    assert "1: Start-MgServicePrincipalSynchronizationJob has no -JobId" in problems
    assert "2: unknown cmdlet New-MgSynchronizationJob" in problems
    assert "3: Get-MgServicePrincipal has no -Tags" in problems
    assert "unbalanced ()" in problems


def test_an_organization_is_emitted_and_a_read_only_members_part_is_said(tmp_path: Path) -> None:
    """The multitenant organization's steps as Graph calls, each tenant signing in with
    MultiTenantOrganization.ReadWrite.All; what a read-only member's admin must run, as a
    comment where the change board reads the script."""
    from tests.engine.test_organization import _bench, _plan

    bench = _bench(tmp_path, read_only="tailspin")
    plan = _plan(bench)
    desired = bench.desired()
    script = plan_powershell(plan, tenant_ids={n: t.tenant_id for n, t in desired.tenants.items()})
    assert check_script(script) == []
    assert (
        "Invoke-MgGraphRequest -Method PUT -Uri 'v1.0/tenantRelationships/multiTenantOrganization'"
        in script
    )
    assert "-Method POST -Uri 'v1.0/tenantRelationships/multiTenantOrganization/tenants'" in script
    assert (
        "-Method PATCH -Uri 'v1.0/tenantRelationships/multiTenantOrganization/joinRequest'"
        in script
    )
    assert "MultiTenantOrganization.ReadWrite.All" in script
    notes = script.split("# ---- not done by this script\n", 1)[1]
    assert "tailspin" in notes
    assert "(no PowerShell rendering" not in script


def test_group_sync_allows_groups_on_graph_beta(tmp_path: Path) -> None:
    """groupSyncInbound exists only on Graph beta: the target's step goes there; the rest of
    the script stays on v1.0."""
    from tests.engine.test_group_sync import _bench

    bench = _bench(tmp_path)
    desired = bench.desired()
    plan = bench.run(lambda session: make_plan(session.desired, session))
    script = plan_powershell(plan, tenant_ids={n: t.tenant_id for n, t in desired.tenants.items()})
    assert check_script(script) == []
    contoso = desired.tenants["contoso"].tenant_id
    beta = [line for line in script.splitlines() if "'beta/" in line]
    assert len(beta) == 1
    assert beta[0].startswith(
        "Invoke-MgGraphRequest -Method PUT -Uri "
        f"'beta/policies/crossTenantAccessPolicy/partners/{contoso}/identitySynchronization'"
    )
    assert "groupSyncInbound" in script.split(beta[0], 1)[1].split("Invoke-MgGraphRequest", 1)[0]
