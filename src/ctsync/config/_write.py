"""Writing links into a config file and keeping everything else: comments, order, anchors.

``ctsync import`` adds what it found to the admin's own file. ruamel.yaml's round-trip mode
keeps the comments and layout of what is already there; new templates and links are written in
block style, the way docs/config.md shows them.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from ctsync.errors import ConfigError

__all__ = ["merge_links", "set_tenant_keys"]


def merge_links(
    text: str,
    *,
    name: str,
    templates: Mapping[str, Any],
    links: list[dict[str, Any]],
    tenant_settings: Mapping[str, Mapping[str, Any]] | None = None,
    organization: Mapping[str, Any] | None = None,
    beta: Sequence[str] = (),
) -> str:
    """``text`` with ``templates`` added (a name already taken gets a suffix) and ``links``
    added; a link of the same ``source:target`` already in the file is replaced.
    ``tenant_settings`` sets keys of tenants the file has (``{"contoso": {"default_access":
    ...}}``), replacing what the key held; ``organization`` replaces the ``organization:``
    block; ``beta`` features are added to the file's ``beta:`` list (kept as it is)."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    yaml, tree = _load(text, name)
    _set_tenant_keys(tree, tenant_settings or {}, name)
    if organization is not None:
        tree["organization"] = _block(dict(organization))
    if beta:
        have = tree.get("beta")
        listed = list(have) if isinstance(have, list) else []
        tree["beta"] = _block([*listed, *(f for f in beta if f not in listed)])

    renamed: dict[str, str] = {}
    if templates:
        existing = tree.get("templates")
        if not isinstance(existing, CommentedMap):
            existing = CommentedMap()
            tree["templates"] = existing
        for template, settings in templates.items():
            chosen, n = template, 1
            while chosen in existing:
                n += 1
                chosen = f"{template}-{n}"
            renamed[template] = chosen
            existing[chosen] = _block(settings)

    current = tree.get("links")
    if not isinstance(current, CommentedSeq):
        current = CommentedSeq()
        tree["links"] = current
    for link in links:
        entry = dict(link)
        if "template" in entry:
            entry["template"] = renamed.get(entry["template"], entry["template"])
        key = (entry["source"], entry["target"])
        for index, old in enumerate(list(current)):
            if isinstance(old, Mapping) and (old.get("source"), old.get("target")) == key:
                del current[index]
                break
        current.append(_block(entry))
    return _dump(yaml, tree)


def set_tenant_keys(text: str, *, name: str, settings: Mapping[str, Mapping[str, Any]]) -> str:
    """``text`` with keys of its tenants set (``{"contoso": {"auth": {...}}}``), replacing what
    each key held; everything else — comments, order, anchors — stays."""
    yaml, tree = _load(text, name)
    _set_tenant_keys(tree, settings, name)
    return _dump(yaml, tree)


def _load(text: str, name: str) -> tuple[Any, Any]:
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.error import YAMLError

    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 100
    yaml.brace_single_entry_mapping_in_flow_sequence = True  # keep [{group: X}] as written
    try:
        tree = yaml.load(text)
    except YAMLError as exc:
        msg = f"cannot change a file that is not YAML: {type(exc).__name__}"
        raise ConfigError(msg, location=name) from None
    if not isinstance(tree, CommentedMap):
        msg = "the top level must be a mapping with version, tenants, templates, links..."
        raise ConfigError(msg, location=name)
    return yaml, tree


def _set_tenant_keys(tree: Any, settings: Mapping[str, Mapping[str, Any]], name: str) -> None:
    from ruamel.yaml.comments import CommentedMap

    tenants = tree.get("tenants")
    for tenant, keys in settings.items():
        entry = tenants.get(tenant) if isinstance(tenants, CommentedMap) else None
        if not isinstance(entry, CommentedMap):
            msg = f"tenants.{tenant} is not a mapping this file spells out; cannot change it"
            raise ConfigError(msg, location=name)
        for setting, value in keys.items():
            entry[setting] = _block(value, flow=setting != "auth")  # auth: one key a line


def _dump(yaml: Any, tree: Any) -> str:
    out = io.StringIO()
    yaml.dump(tree, out)
    return out.getvalue()


def _block(value: Any, *, flow: bool = True) -> Any:
    """Plain data as ruamel's block-style nodes; short lists of scalars, and mappings of up to
    three scalars (``inbound_trust: {mfa: true, ...}``), stay on one line as docs/config.md
    writes them."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(value, Mapping):
        node = CommentedMap()
        for key, item in value.items():
            node[key] = _block(item, flow=key != "mappings")  # one mapping per line
        if (
            flow
            and 0 < len(value) <= 3
            and all(not isinstance(v, Mapping | list) for v in value.values())
        ):
            node.fa.set_flow_style()
        return node
    if isinstance(value, list):
        seq = CommentedSeq(_block(item) for item in value)
        if all(not isinstance(item, Mapping | list) for item in value):
            seq.fa.set_flow_style()
        return seq
    return value
