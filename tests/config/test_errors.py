"""Every malformed config is a ConfigError at ``file:line:col`` saying what is wrong.

HEADER (helpers.py) is eight lines, so a snippet's first line is line 9.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ctsync.config import load, loads
from ctsync.errors import ConfigError

from .helpers import CONTOSO_ID, FABRIKAM_ID, HEADER, error_of

TAILSPIN = "  tailspin:\n    tenant_id: 3d3c0000-0000-4000-8000-000000000003\n"

CASES: list[tuple[str, str, str, str]] = [
    # (id, snippet after HEADER, location, a part of the message)
    (
        "unknown key, with the closest valid one",
        "links:\n  - {source: contoso, target: fabrikam, templat: x}\n",
        "c.yaml:10:41",
        "links[0]: unknown key 'templat' in a link; did you mean 'template'? "
        "(valid keys: source, target, template, overrides, access, sync, adopt)",
    ),
    (
        "unknown top-level key",
        "linkz: []\n",
        "c.yaml:9:1",
        "unknown key 'linkz' in the top level; did you mean 'links'?",
    ),
    (
        "unknown key in a deep section",
        "links:\n  - source: contoso\n    target: fabrikam\n    sync: {deletion_treshold: 5}\n",
        "c.yaml:12:12",
        "links[0].sync: unknown key 'deletion_treshold' in sync; "
        "did you mean 'deletion_threshold'?",
    ),
    (
        "a list where a mapping belongs",
        "links: {source: contoso}\n",
        "c.yaml:9:8",
        "links: expected a list, got a mapping",
    ),
    (
        "text where a boolean belongs (YAML 1.2: yes is text)",
        "links:\n  - {source: contoso, target: fabrikam, sync: {start: yes}}\n",
        "c.yaml:10:55",
        "links[0].sync.start: expected true or false, got text 'yes'",
    ),
    (
        "quoted number",
        "links:\n  - {source: contoso, target: fabrikam, sync: {deletion_threshold: '5'}}\n",
        "c.yaml:10:68",
        "expected a whole number, got text '5'",
    ),
    (
        "deletion threshold below 1",
        "links:\n  - {source: contoso, target: fabrikam, sync: {deletion_threshold: 0}}\n",
        "c.yaml:10:68",
        "links[0].sync.deletion_threshold: must be at least 1 (got 0)",
    ),
    (
        "a tenant with nothing under it",
        "  tailspin:\n",
        "c.yaml:9:3",
        "tenants.tailspin: expected a mapping (key: value), got nothing (null)",
    ),
    (
        "bad GUID",
        TAILSPIN.replace("0003", "003") + "    auth: {method: azure_cli}\n",
        "c.yaml:10:16",
        "tenants.tailspin.tenant_id: '3d3c0000-0000-4000-8000-00000000003' is not a GUID",
    ),
    (
        "unknown cloud",
        TAILSPIN + "    cloud: glbal\n    auth: {method: azure_cli}\n",
        "c.yaml:11:12",
        "tenants.tailspin.cloud: 'glbal' is not valid here; use 'global', 'usgov', "
        "'usgovdod' or 'china' (did you mean 'global'?)",
    ),
    (
        "cloud endpoints over plain http",
        TAILSPIN
        + "    cloud: {graph_url: 'http://graph.example.com/v1.0', authority: https://x.example}\n"
        + "    auth: {method: azure_cli}\n",
        "c.yaml:11:24",
        "tenants.tailspin.cloud: cloud graph_url 'http://graph.example.com/v1.0' must use https",
    ),
    (
        "unknown auth method",
        TAILSPIN + "    auth: {method: password}\n",
        "c.yaml:11:11",
        "tenants.tailspin.auth: unknown method 'password'; use one of 'client_secret'",
    ),
    (
        "auth without a method",
        TAILSPIN + "    auth: {client_id: x}\n",
        "c.yaml:11:5",
        "tenants.tailspin.auth: missing key 'method'",
    ),
    (
        "auth fields missing for the method",
        TAILSPIN + "    auth: {method: certificate}\n",
        "c.yaml:11:5",
        "tenants.tailspin.auth: missing key 'client_id'",
    ),
    (
        "a key of another auth method",
        TAILSPIN + "    auth: {method: azure_cli, client_secret_env: X}\n",
        "c.yaml:11:31",
        "unknown key 'client_secret_env' in auth (method azure_cli) (valid keys: method)",
    ),
    (
        "client secret from both env and file",
        TAILSPIN
        + "    auth: {method: client_secret, client_id: 3d3c0000-0000-4000-8000-0000000000aa,\n"
        + "           client_secret_env: X, client_secret_file: x.secret}\n",
        "c.yaml:12:34",
        "tenants.tailspin.auth: give client_secret_env or client_secret_file, not both",
    ),
    (
        "client secret from neither",
        TAILSPIN
        + "    auth: {method: client_secret, client_id: 3d3c0000-0000-4000-8000-0000000000aa}\n",
        "c.yaml:11:5",
        "auth method client_secret needs client_secret_env (an environment variable) "
        "or client_secret_file (a file)",
    ),
    (
        "bad environment variable name",
        TAILSPIN
        + "    auth: {method: certificate, client_id: 3d3c0000-0000-4000-8000-0000000000aa,\n"
        + "           certificate_path: c.pem, certificate_password_env: 'MY-PASS'}\n",
        "c.yaml:12:63",
        "'MY-PASS' is not an environment variable name",
    ),
    (
        "two names for one tenant id",
        f"  again:\n    tenant_id: {CONTOSO_ID.upper()}\n    auth: {{method: azure_cli}}\n",
        "c.yaml:10:16",
        "tenant again has the same tenant_id as contoso (c.yaml:3:3)",
    ),
    (
        "unknown template",
        "templates:\n  member-sync: {}\n"
        "links:\n  - {source: contoso, target: fabrikam, template: membersync}\n",
        "c.yaml:12:51",
        "links[0].template: unknown template 'membersync'; did you mean 'member-sync'? "
        "(templates: member-sync)",
    ),
    (
        "link to an undefined tenant",
        "links:\n  - {source: contoso, target: fabrikm}\n",
        "c.yaml:10:31",
        "links[0].target: no tenant named 'fabrikm'; did you mean 'fabrikam'? "
        "(tenants: contoso, fabrikam)",
    ),
    (
        "mesh naming an undefined tenant",
        "topologies:\n  - mesh: [contoso, tailspin]\n",
        "c.yaml:10:21",
        "topologies[0].mesh[1]: no tenant named 'tailspin'",
    ),
    (
        "hub naming an undefined tenant",
        "topologies:\n  - {hub: contso, spokes: [fabrikam]}\n",
        "c.yaml:10:11",
        "topologies[0].hub: no tenant named 'contso'; did you mean 'contoso'?",
    ),
    (
        "source is target",
        "links:\n  - {source: fabrikam, target: fabrikam}\n",
        "c.yaml:10:32",
        "links[0]: source and target are both fabrikam",
    ),
    (
        "hub among its spokes",
        "topologies:\n  - {hub: contoso, spokes: [fabrikam, contoso]}\n",
        "c.yaml:10:39",
        "topologies[0].spokes[1]: contoso is the hub; it can't also be a spoke",
    ),
    (
        "tenant listed twice in a mesh",
        "topologies:\n  - {mesh: [contoso, fabrikam, contoso]}\n",
        "c.yaml:10:32",
        "topologies[0].mesh[2]: contoso is listed twice (first at c.yaml:10:13)",
    ),
    (
        "duplicate link in links",
        "links:\n  - {source: contoso, target: fabrikam}\n"
        "  - {source: contoso, target: fabrikam}\n",
        "c.yaml:11:5",
        "link contoso:fabrikam is defined twice: here and at c.yaml:10:5",
    ),
    (
        "duplicate link from a topology",
        "links:\n  - {source: fabrikam, target: contoso}\n"
        "topologies:\n  - {hub: contoso, spokes: [fabrikam], direction: both}\n",
        "c.yaml:12:29",
        "link fabrikam:contoso is defined twice: here and at c.yaml:10:5",
    ),
    (
        "a topology that is neither mesh nor hub",
        "topologies:\n  - {mesh: [contoso, fabrikam], hub: contoso}\n",
        "c.yaml:10:5",
        "a topology is {mesh: [tenants...]} or {hub: tenant, spokes: [tenants...]}",
    ),
    (
        "overrides without a template",
        "links:\n  - {source: contoso, target: fabrikam, overrides: {}}\n",
        "c.yaml:10:41",
        "overrides needs a template; without one, write access and sync directly",
    ),
    (
        "inline settings beside a template",
        "templates: {t: {}}\n"
        "links:\n  - {source: contoso, target: fabrikam, template: t, sync: {}}\n",
        "c.yaml:11:54",
        "with a template, put sync under overrides",
    ),
    (
        "unknown scoping operator",
        "links:\n  - source: contoso\n    target: fabrikam\n"
        "    sync: {scope: {filter: \"department EQUAL 'Sales'\"}}\n",
        "c.yaml:12:40",
        "links[0].sync.scope.filter: unknown scoping operator 'EQUAL'; valid operators: EQUALS, "
        "IS FALSE, IS NOT NULL, IS NULL, IS TRUE, NOT EQUALS, NOT REGEX MATCH, REGEX MATCH, &, "
        "!&, ENDS_WITH, Greater_Than, Greater_Than_OR_EQUALS, Includes",
    ),
    (
        "a value for a unary operator",
        "links:\n  - source: contoso\n    target: fabrikam\n"
        "    sync: {scope: {filter: \"accountEnabled IS TRUE 'yes'\"}}\n",
        "c.yaml:12:52",
        "IS TRUE takes no value (write: accountEnabled IS TRUE)",
    ),
    (
        "no value for a binary operator",
        "links:\n  - source: contoso\n    target: fabrikam\n"
        "    sync: {scope: {filter: 'a EQUALS b AND department NOT EQUALS'}}\n",
        "c.yaml:12:65",
        "NOT EQUALS needs a value, e.g. department NOT EQUALS 'Sales'",
    ),
    (
        "an attribute Entra can't scope on",
        "links:\n  - source: contoso\n    target: fabrikam\n"
        "    sync: {scope: {filter: 'userType EQUALS Member'}}\n",
        "c.yaml:12:29",
        "userType can't be used in a scoping filter",
    ),
    (
        "malformed expression: the position of the error",
        "links:\n  - source: contoso\n    target: fabrikam\n"
        "    sync:\n      mappings:\n        displayName: 'Join(\" \", [givenName] [surname])'\n",
        "c.yaml:14:45",
        "links[0].sync.mappings.displayName: expected ',' or ')' to close Join(, "
        "found '[surname])'",
    ),
    (
        "unknown function, with the known ones",
        "links:\n  - source: contoso\n    target: fabrikam\n"
        "    sync:\n      mappings:\n        jobTitle: ToUppr([jobTitle])\n",
        "c.yaml:14:19",
        "unknown function 'ToUppr'; did you mean ToUpper? known functions: "
        "AppRoleAssignments, AppRoleAssignmentsComplex, Append",
    ),
    (
        "function name in the wrong case",
        "links:\n  - source: contoso\n    target: fabrikam\n"
        "    sync:\n      mappings:\n        jobTitle: '\"x\"'\n        mail: 'toLower([mail])'\n",
        "c.yaml:15:16",
        "unknown function 'toLower'; names are case-sensitive: ToLower",
    ),
    (
        "too many arguments for a Graph function",
        "links:\n  - source: contoso\n    target: fabrikam\n"
        "    sync: {mappings: {a: 'Mid([a], 1, 2, 3)'}}\n",
        "c.yaml:12:42",
        "Mid takes at most 3 argument(s), got 4",
    ),
    (
        "a bare word is no expression",
        "links:\n  - source: contoso\n    target: fabrikam\n"
        "    sync: {mappings: {companyName: Contoso}}\n",
        "c.yaml:12:36",
        "'Contoso' is neither a function call nor a value; write [Contoso] for the attribute "
        'or "Contoso" for a constant',
    ),
    (
        "mapping the matching attribute",
        "links:\n  - source: contoso\n    target: fabrikam\n"
        "    sync:\n      mappings:\n        alternativeSecurityIds: '[objectId]'\n",
        "c.yaml:14:9",
        "can't map alternativeSecurityIds: alternativeSecurityIds is the matching attribute "
        "of cross-tenant sync",
    ),
    (
        "removing the matching attribute",
        "links:\n  - source: contoso\n    target: fabrikam\n"
        "    sync: {mappings: {alternativeSecurityIds: null}}\n",
        "c.yaml:12:23",
        "can't map alternativeSecurityIds",
    ),
    (
        "otherMails as a target",
        "links:\n  - source: contoso\n    target: fabrikam\n"
        "    sync: {mappings: {otherMails: '[mail]'}}\n",
        "c.yaml:12:23",
        "can't map otherMails: otherMails is computed by the target tenant",
    ),
    (
        "proxyAddresses as a target",
        "links:\n  - source: contoso\n    target: fabrikam\n"
        "    sync: {mappings: {proxyAddresses: '[mail]'}}\n",
        "c.yaml:12:23",
        "can't map proxyAddresses: proxyAddresses is read-only in the target tenant",
    ),
    (
        "userType mapped instead of set",
        "links:\n  - source: contoso\n    target: fabrikam\n"
        "    sync: {mappings: {userType: '\"Guest\"'}}\n",
        "c.yaml:12:23",
        "userType is set with sync.user_type",
    ),
    (
        "a mapping with neither expression nor constant",
        "links:\n  - source: contoso\n    target: fabrikam\n"
        "    sync:\n      mappings:\n        employeeType: {apply: on_create}\n",
        "c.yaml:14:9",
        "links[0].sync.mappings.employeeType: a mapping needs an expression, a constant or graph",
    ),
    (
        "a user that is neither a UPN nor an id",
        "links:\n  - source: contoso\n    target: fabrikam\n"
        "    sync: {scope: {assigned: [{user: adele}]}}\n",
        "c.yaml:12:38",
        "user 'adele' is neither a user principal name (x@y) nor an object id",
    ),
    (
        "all_members and assigned together",
        "links:\n  - source: contoso\n    target: fabrikam\n"
        "    sync: {scope: {all_members: true, assigned: [{group: G}]}}\n",
        "c.yaml:12:20",
        "all_members: true puts every user in scope, so assigned would be ignored",
    ),
    (
        "all_members in overrides, assigned in the template",
        "templates:\n  t: {sync: {scope: {assigned: [{group: G}]}}}\n"
        "links:\n  - source: contoso\n    target: fabrikam\n    template: t\n"
        "    overrides: {sync: {scope: {all_members: true}}}\n",
        "c.yaml:15:32",
        "link contoso:fabrikam (template t): links[0].overrides.sync.scope: all_members: true",
    ),
    (
        "duplicate keys",
        "links:\n  - source: contoso\n    source: fabrikam\n",
        "c.yaml:11:5",
        "duplicate key 'source': a key may appear only once in a mapping",
    ),
    (
        "default_access: an unknown key",
        "    default_access: {direct_connect: {inbound: allow_all}}\n",
        "c.yaml:9:22",
        "tenants.fabrikam.default_access: unknown key 'direct_connect' in default_access",
    ),
    (
        "default_access: automatic redemption is per direction",
        "    default_access: {automatic_redemption: true}\n",
        "c.yaml:9:44",
        "tenants.fabrikam.default_access.automatic_redemption: expected a mapping",
    ),
    (
        "default_access: a B2B value that is not allow_all/block_all",
        "    default_access: {b2b_collaboration: {outbound: allowed}}\n",
        "c.yaml:9:52",
        "'allowed' is not valid here; use 'allow_all' or 'block_all'",
    ),
    (
        "group sync without the beta opt-in",
        "links:\n  - source: contoso\n    target: fabrikam\n    sync: {groups: true}\n",
        "c.yaml:12:20",
        "link contoso:fabrikam: sync.groups sets the target's groupSyncInbound, a Microsoft "
        "Graph beta property: opt in with `beta: [group_sync]` at the top level of the file",
    ),
    (
        "group sync set by a template, without the beta opt-in",
        "templates:\n  g:\n    sync: {groups: true}\n"
        "links:\n  - {source: contoso, target: fabrikam, template: g}\n",
        "c.yaml:11:20",
        "link contoso:fabrikam (template g): sync.groups sets the target's groupSyncInbound",
    ),
    (
        "a group filter without group sync",
        "beta: [group_sync]\nlinks:\n  - source: contoso\n    target: fabrikam\n"
        "    sync: {group_filter: \"displayName EQUALS 'x'\"}\n",
        "c.yaml:13:26",
        "link contoso:fabrikam: sync.group_filter filters the groups synced; set sync.groups: true",
    ),
    (
        "an unknown beta feature",
        "beta: [groups]\n",
        "c.yaml:9:8",
        "beta[0]: 'groups' is not valid here; use 'group_sync'",
    ),
    (
        "a group filter with an unknown operator",
        "beta: [group_sync]\nlinks:\n  - source: contoso\n    target: fabrikam\n"
        "    sync: {groups: true, group_filter: \"displayName STARTS 'x'\"}\n",
        "c.yaml:13:53",
        "unknown scoping operator 'STARTS'",
    ),
    (
        "YAML syntax error",
        "links: [{source: contoso\n",
        "c.yaml:10:1",
        "YAML syntax error: expected ',' or '}', but got '<stream end>' "
        "(while parsing a flow mapping at line 9)",
    ),
    (
        "a tab",
        "links:\n\t- x\n",
        "c.yaml:10:1",
        "YAML syntax error: found character '\\t' that cannot start any token",
    ),
]


@pytest.mark.parametrize(
    ("snippet", "location", "message"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_malformed_config(snippet: str, location: str, message: str) -> None:
    error = error_of(snippet)
    assert error.location == location, str(error)
    assert message in error.message
    assert str(error).startswith(f"{location}: ")


def test_version_must_be_1() -> None:
    for value, col in (("2", 10), ("true", 10), ("'1'", 10)):
        error = error_of(HEADER.replace("version: 1", f"version: {value}"), header=False)
        assert error.location == f"c.yaml:1:{col}"
        assert "version must be 1" in error.message


def test_version_is_required() -> None:
    error = error_of(HEADER.replace("version: 1\n", ""), header=False)
    assert error.location == "c.yaml:1:1"
    assert error.message == "missing key 'version'"


def test_tenants_are_required() -> None:
    error = error_of("version: 1\ntenants: {}\n", header=False)
    assert (error.location, error.message) == ("c.yaml:2:10", "tenants: needs at least 1 entry")


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n"])
def test_empty_file(text: str) -> None:
    error = error_of(text, header=False)
    assert error.location == "c.yaml:1:1"
    assert "the file is empty" in error.message


def test_top_level_must_be_a_mapping() -> None:
    error = error_of("- 1\n- 2\n", header=False)
    assert error.location == "c.yaml:1:1"
    assert "the top level must be a mapping" in error.message


def test_non_text_key() -> None:
    error = error_of("1: 2\n")
    assert (error.location, error.message) == ("c.yaml:9:1", "key 1 must be text; quote it")


def test_managed_false_source_is_an_error() -> None:
    text = f"""\
version: 1
tenants:
  contoso:
    tenant_id: {CONTOSO_ID}
    auth: {{method: azure_cli}}
  partner:
    tenant_id: {FABRIKAM_ID}
    managed: false
    auth: {{method: azure_cli}}
links:
  - {{source: contoso, target: partner}}
  - {{source: partner, target: contoso}}
"""
    error = error_of(text, header=False)
    assert error.location == "c.yaml:12:14"
    assert error.message == (
        "links[1].source: partner is managed: false (c.yaml:6:3), but the source of a link "
        "must be managed: ctsync creates the link's sync job in the source tenant"
    )
    # A hub sending out, or a mesh, makes every source tenant a source.
    tenants = text.split("links:", maxsplit=1)[0]
    hub_in = tenants + "topologies:\n  - {hub: contoso, spokes: [partner], direction: in}\n"
    assert error_of(hub_in, header=False).location == "c.yaml:11:29"
    mesh = tenants + "topologies:\n  - {mesh: [contoso, partner]}\n"
    assert error_of(mesh, header=False).location == "c.yaml:11:22"


def test_every_schema_problem_is_listed_first_one_first() -> None:
    error = error_of(
        "links:\n  - source: contoso\n    target: fabrikam\n"
        "    sync: {start: 1, actions: [create, upsert], deletion_threshold: 0}\n"
        "  - {source: contoso, target: fabrikam, bogus: 1}\n"
    )
    assert error.location == "c.yaml:12:19"
    lines = str(error).splitlines()
    assert lines == [
        "c.yaml:12:19: links[0].sync.start: expected true or false, got 1 (a number)",
        "c.yaml:12:40: links[0].sync.actions[1]: 'upsert' is not valid here; use 'create', "
        "'update' or 'delete'",
        "c.yaml:12:69: links[0].sync.deletion_threshold: must be at least 1 (got 0)",
        "c.yaml:13:41: links[1]: unknown key 'bogus' in a link (valid keys: source, target, "
        "template, overrides, access, sync, adopt)",
    ]


def test_expression_position_inside_an_escaped_string_falls_back_to_the_value() -> None:
    # In a double-quoted YAML string the escapes shift columns; the value's start is certain.
    error = error_of(
        "links:\n  - source: contoso\n    target: fabrikam\n"
        '    sync: {mappings: {a: "Join(\\"x\\", [a] [b])"}}\n'
    )
    assert error.location == "c.yaml:12:26"
    assert "expected ',' or ')' to close Join(" in error.message


def test_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load(missing)
    assert caught.value.location == str(missing)
    assert "does not exist" in caught.value.message


def test_not_utf8(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"version: 1\n\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load(bad)


def test_ca_bundle_must_exist(tmp_path: Path) -> None:
    text = HEADER + (
        "  emu:\n    tenant_id: 3d3c0000-0000-4000-8000-000000000009\n"
        "    cloud: {graph_url: 'https://127.0.0.1:1/v1.0', authority: 'https://127.0.0.1:1',\n"
        "            ca_bundle: missing.pem}\n"
        "    auth: {method: azure_cli}\n"
    )
    with pytest.raises(ConfigError) as caught:
        loads(text, path="c.yaml", base_dir=tmp_path)
    assert caught.value.location == "c.yaml:12:24"
    assert str(tmp_path / "missing.pem") in caught.value.message
