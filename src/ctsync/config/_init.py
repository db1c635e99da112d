"""Starting configs: one that works as is against a running emulator, one to edit for real tenants.

``ctsync init --from-emulator INFO_FILE`` must give a config that plans and applies with no
variables to export, yet the YAML must hold no secret. How each tenant signs in (``auth``):

- ``client_secret`` (default): the client secret goes to
  ``<config dir>/.ctsync/secrets/<tenant>.secret`` (mode 0600) and the config points at it with
  ``client_secret_file``;
- ``certificate``: the certificate the emulator wrote for the client (``certificate_path`` in
  the info file, key and certificate in one PEM);
- ``workload_identity``: the federated token file the emulator wrote (``federated_token_file``),
  trusted by a federated identity credential on the client.

The last two write no secret anywhere.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from ctsync.errors import ConfigError

from ._schema import NAME_PATTERN

__all__ = ["EMULATOR_AUTH_METHODS", "SECRETS_DIR", "init_example", "init_from_emulator"]

#: How a config made from an emulator's info file may sign in.
EMULATOR_AUTH_METHODS: Final = ("client_secret", "certificate", "workload_identity")
#: The info-file key each method needs from a tenant's entry.
_AUTH_KEYS: Final = {
    "client_secret": "client_secret",
    "certificate": "certificate_path",
    "workload_identity": "federated_token_file",
}

#: Where init writes secret files, relative to the config file's directory.
SECRETS_DIR: Final = Path(".ctsync") / "secrets"

_PILOT_GROUP: Final = "CTS-Pilot"


def init_from_emulator(
    info: Mapping[str, Any],
    *,
    links: list[tuple[str, str]] | None = None,
    path: Path,
    auth: str = "client_secret",
) -> str:
    """YAML for the emulator ``info`` describes (its ``--info-file`` JSON), to be saved at
    ``path``. ``auth`` picks how every tenant signs in (see module doc); with
    ``client_secret`` each tenant's secret is written under ``path``'s directory.

    ``links`` are ``(source, target)`` tenant names; by default the first tenant links to each
    other one.
    """
    if auth not in EMULATOR_AUTH_METHODS:
        msg = f"auth {auth!r}: use one of {', '.join(EMULATOR_AUTH_METHODS)}"
        raise ConfigError(msg)
    graph_url = _text(info, "graph_url")
    authority = _text(info, "authority")
    ca_cert = info.get("ca_cert")
    if ca_cert is not None and not isinstance(ca_cert, str):
        msg = "emulator info: ca_cert must be a path or null"
        raise ConfigError(msg)
    tenants = _tenants(info, auth)
    names = list(tenants)
    if links is None:
        links = [(names[0], other) for other in names[1:]]
    for source, target in links:
        for name in (source, target):
            if name not in tenants:
                known = ", ".join(names)
                msg = f"link {source}:{target}: the emulator has no tenant {name!r} ({known})"
                raise ConfigError(msg)
        if source == target:
            msg = f"link {source}:{target}: a link joins two different tenants"
            raise ConfigError(msg)

    if auth == "client_secret":
        secrets_dir = path.parent / SECRETS_DIR
        for name, tenant in tenants.items():
            _write_private(secrets_dir / f"{name}.secret", str(tenant["client_secret"]))

    cloud = {"graph_url": graph_url, "authority": authority}
    if ca_cert:
        cloud["ca_bundle"] = ca_cert
    lines = [
        f"# ctsync config for the emulator at {authority}",
        "# (written by `ctsync init --from-emulator`; every key is described in the JSON Schema",
        "# `ctsync schema` prints, and ctsync.schema.json beside this file).",
        _AUTH_COMMENTS[auth],
        "version: 1",
        "",
        "tenants:",
    ]
    for index, (name, tenant) in enumerate(tenants.items()):
        secret_file = (SECRETS_DIR / f"{name}.secret").as_posix()
        lines += [f"  {name}:", f"    tenant_id: {tenant['tenant_id']}"]
        # One emulator serves every tenant: a YAML anchor says so once.
        if index == 0:
            lines.append("    cloud: &emulator")
            lines += [f"      {key}: {_q(value)}" for key, value in cloud.items()]
        else:
            lines.append("    cloud: *emulator")
        lines += ["    auth:", f"      method: {auth}", f"      client_id: {tenant['client_id']}"]
        if auth == "client_secret":
            lines.append(f"      client_secret_file: {_q(secret_file)}")
        elif auth == "certificate":
            lines.append(f"      certificate_path: {_q(str(tenant['certificate_path']))}")
        else:
            lines.append(f"      token_file: {_q(str(tenant['federated_token_file']))}")
    lines += [
        "",
        "templates:",
        "  member-sync:",
        "    access:",
        "      # the target trusts MFA done in the source, so synced users aren't asked twice",
        "      inbound_trust: {mfa: true, compliant_device: false, hybrid_joined_device: false}",
        "      automatic_redemption: true     # cross-tenant sync needs it on both sides",
        "    sync:",
        "      user_type: Member",
        "      scope:",
        f"        assigned: [{{group: {_PILOT_GROUP}}}]   # only members of this group are synced",
        "      actions: [create, update]",
        "",
        "links:",
    ]
    lines += [
        f"  - {{source: {source}, target: {target}, template: member-sync}}"
        for source, target in links
    ]
    if not links:
        lines[-1] = "links: []"
    return "\n".join(lines) + "\n"


def init_example() -> str:
    """A commented config for real tenants: secrets from environment variables."""
    return _EXAMPLE


def _text(info: Mapping[str, Any], key: str) -> str:
    value = info.get(key)
    if not isinstance(value, str) or not value:
        msg = f"emulator info: {key} is missing (is this an `emulator serve --info-file` file?)"
        raise ConfigError(msg)
    return value


_AUTH_COMMENTS: Final = {
    "client_secret": f"# Client secrets are in {SECRETS_DIR.as_posix()}/ beside this file "
    "(mode 0600), never in it.",
    "certificate": "# Each tenant signs in with the certificate the emulator wrote for its client "
    "(no secret anywhere).",
    "workload_identity": "# Each tenant signs in with the federated token file the emulator wrote "
    "for its client (no secret anywhere).",
}


def _tenants(info: Mapping[str, Any], auth: str = "client_secret") -> dict[str, Mapping[str, Any]]:
    entries = info.get("tenants")
    if not isinstance(entries, list) or not entries:
        msg = "emulator info: no tenants listed"
        raise ConfigError(msg)
    tenants: dict[str, Mapping[str, Any]] = {}
    for entry in entries:
        if not isinstance(entry, Mapping):
            msg = "emulator info: each tenant must be an object"
            raise ConfigError(msg)
        for key in ("name", "tenant_id", "client_id", _AUTH_KEYS[auth]):
            if not isinstance(entry.get(key), str) or not entry[key]:
                msg = f"emulator info: a tenant lacks {key}"
                if key != "client_secret":
                    msg += f" (needed for auth {auth}; `ctsync emulator serve` writes it)"
                raise ConfigError(msg)
        name = entry["name"]
        if not re.fullmatch(NAME_PATTERN, name):
            msg = f"emulator info: tenant name {name!r} can't be used as a config name"
            raise ConfigError(msg)
        # The info file lists one entry per client app; the first app of a tenant is used.
        tenants.setdefault(name, entry)
    return tenants


def _write_private(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    # Created 0600 from the start: the secret is never readable by others, not even briefly.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    temporary.replace(path)


def _q(value: str) -> str:
    # A JSON string is a valid YAML double-quoted scalar.
    return json.dumps(value)


_EXAMPLE: Final = """\
# ctsync config: cross-tenant synchronization as code. Every key is described in the JSON
# Schema `ctsync schema` prints (ctsync.schema.json beside this file, for editors).
# `ctsync validate` checks this file; `ctsync plan` shows what would change; `ctsync apply` does it.
version: 1

tenants:
  contoso:                                  # a name of your choice; links use it
    tenant_id: 11111111-1111-1111-1111-111111111111
    cloud: global                           # global | usgov | usgovdod | china
    auth:                                   # an app registration ctsync signs in with
      method: client_secret
      client_id: aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa
      client_secret_env: CONTOSO_CLIENT_SECRET   # or client_secret_file: path/to/secret
  fabrikam:
    tenant_id: 22222222-2222-2222-2222-222222222222
    auth:
      method: client_secret
      client_id: bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb
      client_secret_env: FABRIKAM_CLIENT_SECRET
    # Other methods: certificate {client_id, certificate_path}, workload_identity,
    # managed_identity, azure_cli, device_code. A partner-run tenant: managed: false.

templates:
  member-sync:
    access:
      # The target trusts MFA done in the source, so synced users aren't prompted twice.
      inbound_trust: {mfa: true, compliant_device: false, hybrid_joined_device: false}
      automatic_redemption: true              # cross-tenant sync needs it on both sides
      # b2b_collaboration: {inbound: allow_all, outbound: allow_all}   # omitted: left alone
    sync:
      user_type: Member                       # or Guest; {value: Member, apply: always}
      scope:
        assigned: [{group: CTS-Pilot}]        # users and groups assigned to the sync app
        # filter: "department EQUALS 'Sales' AND country NOT EQUALS 'US'"
        # all_members: true                   # every user (instead of assigned)
      actions: [create, update]               # add delete to remove users that leave scope
      mappings:                               # target attribute: source expression
        companyName: '"Contoso"'              # a constant (double quotes inside)
        # jobTitle: 'ToUpper([jobTitle])'     # a function of source attributes
        # mobile: null                        # remove a default mapping
      deletion_threshold: 500                 # accidental-deletion protection

links:                                        # users of source are synced into target
  - source: contoso
    target: fabrikam
    template: member-sync
    # overrides: {sync: {scope: {filter: "country EQUALS 'US'"}}}

# topologies:                                 # shapes that expand into links
#   - {hub: contoso, spokes: [fabrikam, tailspin], direction: out, template: member-sync}
#   - {mesh: [contoso, fabrikam, tailspin], template: member-sync}
"""
