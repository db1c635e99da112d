from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import ctsync.graph

GRAPH_SRC = Path(ctsync.graph.__file__).parent


def test_all_is_sorted_and_complete() -> None:
    names = ctsync.graph.__all__
    # ruff's RUF022 order: CONSTANTS, then Classes, then functions, each alphabetical
    assert names == sorted(
        names, key=lambda n: (0 if n.isupper() else 1 if n[0].isupper() else 2, n)
    )
    assert len(set(names)) == len(names)
    for name in names:
        assert getattr(ctsync.graph, name) is not None
    public = {
        "AuthSpec",
        "BatchRequest",
        "BatchResult",
        "Cloud",
        "CrossTenantAccessPolicyApi",
        "GraphClient",
        "GraphResponse",
        "Pacer",
        "RetryPolicy",
        "TokenBucket",
        "VirtualClock",
        "WriteRecord",
        "build_credential",
        "estimate_cost",
        "parse_retry_after",
        "raise_for_item",
        "redact",
        "resolve_cloud",
    }
    assert public <= set(names)


def test_importing_the_package_does_not_import_azure_identity() -> None:
    code = (
        "import sys, ctsync.graph as g\n"
        "g.AuthSpec('client_secret', client_id='a', client_secret='s')\n"
        "g.resolve_cloud('global')\n"
        "assert 'azure.identity' not in sys.modules, 'azure.identity was imported'\n"
        "assert 'ctsync.graph.credentials' in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": str(GRAPH_SRC.parent.parent)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr


def _imports(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def test_only_http_imports_httpx_and_only_credentials_imports_azure() -> None:
    for path in sorted(GRAPH_SRC.glob("*.py")):
        modules = _imports(path)
        uses_httpx = any(m == "httpx" or m.startswith("httpx.") for m in modules)
        uses_azure = any(m == "azure" or m.startswith("azure.") for m in modules)
        assert uses_httpx == (path.name == "_http.py"), path.name
        assert uses_azure == (path.name == "credentials.py"), path.name


def test_azure_imports_in_credentials_are_inside_functions() -> None:
    tree = ast.parse((GRAPH_SRC / "credentials.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            assert not any(n and n.startswith("azure") for n in names)
