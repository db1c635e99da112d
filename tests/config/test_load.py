"""Good config files load into the DesiredState the engine codes against."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctsync.config import (
    AccessSettings,
    AttributeSource,
    AuthRef,
    DesiredState,
    InboundTrust,
    LinkSpec,
    MappingSpec,
    Principal,
    ScopeClause,
    ScopeGroup,
    SecretRef,
    SyncSettings,
    TenantSpec,
    load,
)
from ctsync.emulator.tls import generate_tls
from ctsync.errors import ConfigError
from ctsync.graph import CLOUDS

from .helpers import CLIENT_ID, CONTOSO_ID, FABRIKAM_ID, HEADER, TAILSPIN_ID, load_text

REPO = Path(__file__).resolve().parents[2]

FULL = f"""\
version: 1
tenants:
  contoso:
    tenant_id: {CONTOSO_ID.upper()}
    cloud: usgov
    auth:
      method: client_secret
      client_id: {CLIENT_ID}
      client_secret_file: secrets/contoso.secret
    size: L
  fabrikam:
    tenant_id: {FABRIKAM_ID}
    managed: false
    auth: {{method: managed_identity, client_id: {CLIENT_ID}}}
templates:
  member-sync:
    access:
      inbound_trust: {{mfa: true}}
      b2b_collaboration: {{inbound: allow_all, outbound: block_all}}
    sync:
      user_type: {{value: Guest, apply: always}}
      scope:
        assigned: [{{group: CTS-Pilot}}, {{user: adele@contoso.com}}]
        filter: "department EQUALS 'Sales' AND accountEnabled IS TRUE OR country not_equals US"
      actions: [create, update, delete]
      show_in_address_list: false
      mappings:
        companyName: '"Contoso"'
        jobTitle: 'ToUpper([jobTitle])'
        mobile: null
        employeeType: {{constant: Partner, apply: on_create}}
      deletion_threshold: null
      start: false
      app_display_name: Contoso to Fabrikam
links:
  - source: contoso
    target: fabrikam
    template: member-sync
"""


def test_a_full_file_resolves_to_the_expected_state(tmp_path: Path) -> None:
    config = tmp_path / "ctsync.yaml"
    config.write_text(FULL)

    state = load(config)

    sync = SyncSettings(
        user_type="Guest",
        user_type_apply="always",
        all_members=False,
        assigned=(
            Principal(kind="group", ref="CTS-Pilot"),
            Principal(kind="user", ref="adele@contoso.com"),
        ),
        scope=(
            ScopeGroup(
                name="ctsync filter 1",
                clauses=(
                    ScopeClause(attribute="department", operator="EQUALS", values=("Sales",)),
                    ScopeClause(attribute="accountEnabled", operator="IS TRUE"),
                ),
            ),
            ScopeGroup(
                name="ctsync filter 2",
                clauses=(ScopeClause(attribute="country", operator="NOT EQUALS", values=("US",)),),
            ),
        ),
        actions=frozenset({"create", "update", "delete"}),
        show_in_address_list=False,
        mappings=(
            MappingSpec(
                target="companyName",
                source=AttributeSource(type="Constant", name="Contoso", expression='"Contoso"'),
            ),
            MappingSpec(
                target="jobTitle",
                source=AttributeSource(
                    type="Function",
                    name="ToUpper",
                    expression="ToUpper([jobTitle])",
                    parameters=(
                        (
                            "source",
                            AttributeSource(
                                type="Attribute", name="jobTitle", expression="[jobTitle]"
                            ),
                        ),
                    ),
                ),
            ),
            MappingSpec(target="mobile", source=None),
            MappingSpec(
                target="employeeType",
                source=AttributeSource(type="Constant", name="Partner", expression='"Partner"'),
                apply="on_create",
            ),
        ),
        deletion_threshold=None,
        start=False,
        app_display_name="Contoso to Fabrikam",
    )
    assert state == DesiredState(
        path=config,
        tenants={
            "contoso": TenantSpec(
                name="contoso",
                tenant_id=CONTOSO_ID,
                cloud=CLOUDS["usgov"],
                auth=AuthRef(
                    method="client_secret",
                    client_id=CLIENT_ID,
                    secret=SecretRef(file="secrets/contoso.secret"),
                ),
                size_class="L",
            ),
            "fabrikam": TenantSpec(
                name="fabrikam",
                tenant_id=FABRIKAM_ID,
                cloud=CLOUDS["global"],
                auth=AuthRef(method="managed_identity", managed_identity_client_id=CLIENT_ID),
                managed=False,
            ),
        },
        links=(
            LinkSpec(
                source="contoso",
                target="fabrikam",
                template="member-sync",
                access=AccessSettings(
                    inbound_trust=InboundTrust(mfa=True),
                    b2b_collaboration_inbound="allowed",
                    b2b_collaboration_outbound="blocked",
                ),
                sync=sync,
            ),
        ),
        config_hash=state.config_hash,
        base_dir=tmp_path,
    )
    # Where things were written, for messages.
    assert state.tenants["contoso"].location == f"{config}:3:3"
    assert state.links[0].location == f"{config}:36:5"
    assert state.links[0].key == "contoso:fabrikam"
    assert state.link("contoso:fabrikam") is state.links[0]
    assert state.tenant("fabrikam").managed is False
    assert sync.flow_types == "Add, Update, Delete"
    assert sync.mappings[3].flow_type == "ObjectAddOnly"


def test_defaults_of_a_bare_link() -> None:
    state = load_text("links:\n  - {source: contoso, target: fabrikam}\n")

    (link,) = state.links
    assert link.template is None
    assert link.access == AccessSettings(
        inbound_trust=None,
        b2b_collaboration_inbound=None,
        b2b_collaboration_outbound=None,
        automatic_redemption=True,
    )
    assert link.sync == SyncSettings()
    assert link.sync.actions == {"create", "update"}
    assert link.sync.flow_types == "Add, Update"
    assert link.sync.deletion_threshold == 500
    assert (link.sync.user_type, link.sync.user_type_apply) == ("Member", "on_create")
    assert link.sync.start
    assert link.sync.show_in_address_list
    assert state.tenants["contoso"].cloud is CLOUDS["global"]


def test_inline_settings_without_a_template() -> None:
    state = load_text(
        """\
        links:
          - source: contoso
            target: fabrikam
            access: {automatic_redemption: false, inbound_trust: {compliant_device: true}}
            sync:
              scope: {all_members: true}
              user_type: Guest
        """
    )
    (link,) = state.links
    assert link.access.automatic_redemption is False
    assert link.access.inbound_trust == InboundTrust(compliant_device=True)
    assert link.sync.all_members is True
    assert (link.sync.user_type, link.sync.user_type_apply) == ("Guest", "on_create")


def test_overrides_merge_into_the_template() -> None:
    state = load_text(
        """\
        templates:
          base:
            access:
              inbound_trust: {mfa: true, compliant_device: true}
            sync:
              user_type: {value: Member, apply: always}
              scope:
                assigned: [{group: A}, {group: B}]
                filter: "department EQUALS 'Sales'"
              actions: [create, update, delete]
              mappings:
                companyName: '"Contoso"'
                jobTitle: '[jobTitle]'
                employeeType: {expression: '"Employee"', apply: on_create}
        links:
          - source: contoso
            target: fabrikam
            template: base
            overrides:
              access:
                inbound_trust: {compliant_device: false}
              sync:
                user_type: {value: Guest}
                scope:
                  assigned: [{group: C}]
                actions: [create]
                mappings:
                  jobTitle: null
                  department: '[department]'
                  employeeType: {apply: always}
          - {source: fabrikam, target: contoso, template: base}
        """
    )
    merged, plain = state.links

    # Mappings merge key by key at every depth ...
    assert merged.access.inbound_trust == InboundTrust(mfa=True, compliant_device=False)
    assert (merged.sync.user_type, merged.sync.user_type_apply) == ("Guest", "always")
    mappings = {m.target: m for m in merged.sync.mappings}
    assert list(mappings) == ["companyName", "jobTitle", "employeeType", "department"]
    assert mappings["jobTitle"].source is None
    assert mappings["employeeType"].apply == "always"
    assert mappings["employeeType"].source == AttributeSource(
        type="Constant", name="Employee", expression='"Employee"'
    )
    assert mappings["department"].source is not None
    # ... lists replace, and keys the override does not name are kept.
    assert merged.sync.assigned == (Principal(kind="group", ref="C"),)
    assert merged.sync.actions == {"create"}
    assert [g.clauses[0].values for g in merged.sync.scope] == [("Sales",)]

    # The template itself is untouched by another link's overrides.
    assert plain.sync.assigned == (
        Principal(kind="group", ref="A"),
        Principal(kind="group", ref="B"),
    )
    assert plain.sync.user_type == "Member"
    assert plain.access.inbound_trust == InboundTrust(mfa=True, compliant_device=True)
    assert {m.target for m in plain.sync.mappings} == {"companyName", "jobTitle", "employeeType"}


def test_shorthands_merge_with_long_forms() -> None:
    state = load_text(
        """\
        templates:
          base:
            sync:
              user_type: Guest
              mappings:
                jobTitle: '[jobTitle]'
                companyName: {expression: '[companyName]'}
        links:
          - source: contoso
            target: fabrikam
            template: base
            overrides:
              sync:
                user_type: {apply: always}
                mappings:
                  jobTitle: {apply: on_create}
                  companyName: {constant: Contoso}
        """
    )
    sync = state.links[0].sync
    # {apply: always} keeps the template's Guest; {apply: on_create} keeps its expression.
    assert (sync.user_type, sync.user_type_apply) == ("Guest", "always")
    mappings = {m.target: m for m in sync.mappings}
    assert mappings["jobTitle"].apply == "on_create"
    assert mappings["jobTitle"].source == AttributeSource(
        type="Attribute", name="jobTitle", expression="[jobTitle]"
    )
    # A constant in overrides replaces the template's expression (one source per mapping).
    assert mappings["companyName"].source == AttributeSource(
        type="Constant", name="Contoso", expression='"Contoso"'
    )


def test_override_can_clear_a_template_list() -> None:
    state = load_text(
        """\
        templates:
          base:
            sync:
              scope: {assigned: [{group: A}], filter: "a EQUALS b"}
        links:
          - source: contoso
            target: fabrikam
            template: base
            overrides: {sync: {scope: {assigned: [], all_members: true, filter: []}}}
        """
    )
    sync = state.links[0].sync
    assert (sync.assigned, sync.all_members, sync.scope) == ((), True, ())


THREE = (
    HEADER
    + f"""\
  tailspin:
    tenant_id: {TAILSPIN_ID}
    auth: {{method: azure_cli}}
  northwind:
    tenant_id: 3d3c0000-0000-4000-8000-000000000004
    auth: {{method: azure_cli}}
templates:
  t: {{sync: {{scope: {{assigned: [{{group: G}}]}}}}}}
"""
)


def _keys(text: str) -> list[str]:
    return [link.key for link in load_text(THREE + text, header=False).links]


def test_mesh_links_every_ordered_pair() -> None:
    keys = _keys("topologies:\n  - {mesh: [contoso, fabrikam, tailspin], template: t}\n")
    assert keys == [
        "contoso:fabrikam",
        "contoso:tailspin",
        "fabrikam:contoso",
        "fabrikam:tailspin",
        "tailspin:contoso",
        "tailspin:fabrikam",
    ]
    four = _keys("topologies:\n  - {mesh: [contoso, fabrikam, tailspin, northwind]}\n")
    assert len(four) == 4 * 3 == len(set(four))


@pytest.mark.parametrize(
    ("direction", "expected"),
    [
        ("out", ["contoso:fabrikam", "contoso:tailspin"]),
        ("in", ["fabrikam:contoso", "tailspin:contoso"]),
        (
            "both",
            ["contoso:fabrikam", "fabrikam:contoso", "contoso:tailspin", "tailspin:contoso"],
        ),
    ],
)
def test_hub_and_spokes_directions(direction: str, expected: list[str]) -> None:
    text = (
        f"topologies:\n  - {{hub: contoso, spokes: [fabrikam, tailspin], direction: {direction}}}\n"
    )
    assert _keys(text) == expected


def test_hub_direction_defaults_to_out() -> None:
    assert _keys("topologies:\n  - {hub: contoso, spokes: [fabrikam]}\n") == ["contoso:fabrikam"]


def test_topology_links_carry_the_template_and_overrides() -> None:
    state = load_text(
        THREE
        + """\
topologies:
  - hub: contoso
    spokes: [fabrikam, tailspin]
    template: t
    overrides: {sync: {deletion_threshold: 7}}
""",
        header=False,
    )
    assert {link.template for link in state.links} == {"t"}
    assert {link.sync.deletion_threshold for link in state.links} == {7}
    assert {link.sync.assigned for link in state.links} == {(Principal(kind="group", ref="G"),)}
    # Each link points at its spoke, so messages about it can too.
    assert [link.location for link in state.links] == ["c.yaml:19:14", "c.yaml:19:24"]


def test_unmanaged_tenants_may_be_targets() -> None:
    state = load_text(
        f"""\
        version: 1
        tenants:
          contoso:
            tenant_id: {CONTOSO_ID}
            auth: {{method: azure_cli}}
          partner:
            tenant_id: {FABRIKAM_ID}
            managed: false
            auth: {{method: azure_cli}}
        topologies:
          - {{hub: contoso, spokes: [partner]}}
        """,
        header=False,
    )
    assert [link.key for link in state.links] == ["contoso:partner"]


def test_explicit_cloud_with_a_relative_ca_bundle(tmp_path: Path) -> None:
    generate_tls(tmp_path)
    config = tmp_path / "ctsync.yaml"
    config.write_text(
        f"""\
version: 1
tenants:
  emu:
    tenant_id: {CONTOSO_ID}
    cloud:
      graph_url: "https://127.0.0.1:8443/v1.0"
      authority: "https://127.0.0.1:8443"
      ca_bundle: ca.pem
    auth: {{method: azure_cli}}
"""
    )
    cloud = load(config).tenants["emu"].cloud
    assert cloud.custom
    assert cloud.graph_url == "https://127.0.0.1:8443/v1.0"
    assert cloud.ca_bundle == str(tmp_path / "ca.pem")


@pytest.mark.parametrize("name", ["pair.yaml", "hub-and-spokes.yaml", "mesh.yaml"])
def test_examples_load(name: str) -> None:
    state = load(REPO / "examples" / name)
    assert state.links
    assert all(state.tenants[link.source].managed for link in state.links)


def test_example_shapes() -> None:
    pair = load(REPO / "examples" / "pair.yaml")
    assert [link.key for link in pair.links] == ["contoso:fabrikam"]
    hub = load(REPO / "examples" / "hub-and-spokes.yaml")
    assert sorted(link.key for link in hub.links) == [
        "contoso:fabrikam",
        "contoso:northwind",
        "contoso:tailspin",
        "tailspin:contoso",
    ]
    mesh = load(REPO / "examples" / "mesh.yaml")
    assert len(mesh.links) == 6


def test_lookup_helpers_name_what_exists() -> None:
    state = load_text("links:\n  - {source: contoso, target: fabrikam}\n")
    with pytest.raises(ConfigError, match=r"no link 'a:b' .*links: contoso:fabrikam"):
        state.link("a:b")
    with pytest.raises(ConfigError, match=r"no tenant 'x' .*tenants: contoso, fabrikam"):
        state.tenant("x")


def test_a_config_without_links_is_valid() -> None:
    state = load_text("")
    assert state.links == ()
    assert set(state.tenants) == {"contoso", "fabrikam"}


# -- config_hash ----------------------------------------------------------------------------

REORDERED = f"""\
# the same content, keys in another order, with comments and flow style
links:
  - {{target: fabrikam, source: contoso}}   # one link
tenants:
  fabrikam:
    auth: {{method: azure_cli}}
    tenant_id: {FABRIKAM_ID.upper()}
  contoso:
    auth:
      client_secret_env: CONTOSO_SECRET
      method: client_secret
      client_id: {CLIENT_ID}
    tenant_id: {CONTOSO_ID}
version: 1
"""


def test_config_hash_ignores_comments_and_key_order() -> None:
    plain = load_text("links:\n  - {source: contoso, target: fabrikam}\n")
    reordered = load_text(REORDERED, header=False)
    assert plain.config_hash == reordered.config_hash
    assert len(plain.config_hash) == 64


def test_config_hash_ignores_where_settings_come_from() -> None:
    inline = load_text(
        "links:\n  - {source: contoso, target: fabrikam, sync: {deletion_threshold: 9}}\n"
    )
    templated = load_text(
        """\
        templates:
          t: {sync: {deletion_threshold: 9}}
        links:
          - {source: contoso, target: fabrikam, template: t}
        """
    )
    assert inline.config_hash == templated.config_hash
    assert inline.to_dict() == templated.to_dict()


def test_config_hash_changes_with_content() -> None:
    base = load_text("links:\n  - {source: contoso, target: fabrikam}\n").config_hash
    changed = [
        "links:\n  - {source: fabrikam, target: contoso}\n",
        "links:\n  - {source: contoso, target: fabrikam, sync: {start: false}}\n",
        "links:\n  - {source: contoso, target: fabrikam, sync: {mappings: {a: '[b]'}}}\n",
        "links:\n  - {source: contoso, target: fabrikam, access: {inbound_trust: {}}}\n",
    ]
    hashes = {load_text(text).config_hash for text in changed}
    assert base not in hashes
    assert len(hashes) == len(changed)
    other_secret = load_text(
        HEADER.replace("CONTOSO_SECRET", "OTHER_SECRET")
        + "links:\n  - {source: contoso, target: fabrikam}\n",
        header=False,
    )
    assert other_secret.config_hash != base


def test_to_dict_has_no_secret_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTOSO_SECRET", "s3cr3t-value")
    state = load_text("links:\n  - {source: contoso, target: fabrikam}\n")
    assert "s3cr3t-value" not in repr(state.to_dict())
    assert state.to_dict()["tenants"]["contoso"]["auth"]["secret"] == {
        "env": "CONTOSO_SECRET",
        "file": None,
    }
