"""Hostile or broken input is refused with a ConfigError at ``file:line:col``, never a traceback,
a hang, a memory blow-up or a silently wrong value. The limits are those of docs/config.md."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from ctsync.config import _yaml, load, loads
from ctsync.config._load import MAX_CONFIG_BYTES
from ctsync.config._regex import regex_problem
from ctsync.config._scope import parse_filter
from ctsync.config._yaml import MAX_DEPTH, MAX_NODES, Locator, read_yaml, walk
from ctsync.emulator.tls import generate_tls
from ctsync.errors import ConfigError
from ctsync.graph.clouds import check_ca_bundle
from ctsync.graph.credentials import check_certificate

from .helpers import CLIENT_ID, HEADER, error_of, load_text

#: Nine lines, 9**9 (387 million) strings once expanded: "billion laughs".
ALIAS_BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join(['lol'] * 9)}]\n"
    for prev, name in zip(["", *"abcdefgh"], "abcdefghi", strict=True)
)

LINK = "links:\n  - source: contoso\n    target: fabrikam\n"


def _error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        read_yaml(text, name="c.yaml")
    return caught.value


# -- 1. aliases and node count ------------------------------------------------------------------


def test_an_alias_bomb_is_refused_at_the_alias_that_crosses_the_limit() -> None:
    error = _error(ALIAS_BOMB)
    # The root and a..e expand to 74,733 values; the first *e on line 6 adds 66,430 more.
    assert error.location == "c.yaml:6:8"
    assert f"more than {MAX_NODES:,}" in error.message
    assert "aliases" in error.message


def test_the_node_limit_counts_expanded_aliases_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    # The root, a and its 3 items, b, *x expanded (a list and 3 items), 4 and 5: 12 values;
    # keys are not counted (as in walk).
    text = "a: &x [1, 2, 3]\nb: [*x, 4, 5]\n"
    monkeypatch.setattr(_yaml, "MAX_NODES", 12)
    assert sum(1 for _ in walk(read_yaml(text, name="c.yaml").data)) == 12
    monkeypatch.setattr(_yaml, "MAX_NODES", 11)
    assert _error(text).location == "c.yaml:2:12"  # at 5
    monkeypatch.setattr(_yaml, "MAX_NODES", 9)
    assert _error(text).location == "c.yaml:2:5"  # at *x


def test_plain_has_its_own_budget_for_what_the_event_check_cannot_see(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ruamel.yaml import YAML

    text = "a: &x {k1: 1, k2: 2, k3: 3}\nb: {<<: *x, k4: 4}\n"
    tree = YAML(typ="rt").load(text)
    monkeypatch.setattr(_yaml, "MAX_NODES", 8)
    with pytest.raises(ConfigError, match="more than 8"):
        _yaml._plain(tree, (), Locator("c.yaml", text), _yaml._Budget())


# -- 2. nesting ---------------------------------------------------------------------------------


def test_nesting_up_to_the_limit_is_read() -> None:
    text = "[" * MAX_DEPTH + "x" + "]" * MAX_DEPTH
    data = read_yaml(text, name="c.yaml").data
    for _ in range(MAX_DEPTH):
        data = data[0]
    assert data == "x"


@pytest.mark.parametrize(
    ("text", "location"),
    [
        # Flow nesting: thousands of [ used to cost the scanner seconds, then RecursionError.
        ("[" * (MAX_DEPTH + 1) + "x" + "]" * (MAX_DEPTH + 1), "c.yaml:1:66"),
        ("[" * 100_000, "c.yaml:1:66"),
        ("{a: " * 10_000 + "x" + "}" * 10_000, "c.yaml:1:261"),
        # Block nesting.
        ("- " * 10_000 + "x\n", "c.yaml:1:131"),
        ("".join(" " * level + f"k{level}:\n" for level in range(100)), "c.yaml:65:65"),
        # An alias that is shallow where it is written but deep where it points.
        ("a: &d " + "[" * 40 + "]" * 40 + "\nb: " + "[" * 30 + "*d" + "]" * 30, "c.yaml:2:34"),
    ],
    ids=["flow", "flow-100k", "flow-mappings", "block-dashes", "block-indent", "via-alias"],
)
def test_nesting_past_the_limit_is_refused(text: str, location: str) -> None:
    error = _error(text)
    assert error.location == location
    assert error.message.startswith(f"nested too deeply: more than {MAX_DEPTH} levels")


def test_a_recursion_error_inside_ruamel_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The backstop, with the depth checks out of the way and a tight recursion limit. The
    # round-trip reader's: the fast one (libyaml's events) does not recurse.
    monkeypatch.setattr(_yaml, "MAX_DEPTH", 10_000)
    monkeypatch.setattr(_yaml, "_read_fast", lambda text, name: None)
    depth = 0
    frame = sys._getframe()
    while frame.f_back is not None:
        frame, depth = frame.f_back, depth + 1
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 150)
    try:
        error = _error("[" * 300 + "]" * 300)
    finally:
        sys.setrecursionlimit(limit)
    assert error.message.startswith("nested too deeply")
    assert error.location == "c.yaml"


# -- scalars ruamel cannot construct --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2026-13-45", "cannot read this date: month must be in 1..12"),
        ("9" * 5000, "cannot read this number: Exceeds the limit (4300 digits)"),
        ('!!int "' + "9" * 5000 + '"', "cannot read this number"),
        ("0x" + "f" * 5000, "this number has more than 1,000 digits"),
    ],
    ids=["date", "decimal", "tagged", "hex"],
)
def test_scalars_ruamel_cannot_construct_are_placed(value: str, message: str) -> None:
    error = _error(f"version: 1\nx: {value}\n")
    assert error.location == "c.yaml:2:4"
    assert message in error.message
    assert "quote it" in error.message


# -- 3. the file itself ---------------------------------------------------------------------------


def test_a_config_over_the_size_limit_is_refused_without_reading_it(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as file:
        file.truncate(MAX_CONFIG_BYTES + 1)  # sparse: nothing to write
    with pytest.raises(ConfigError) as caught:
        load(big)
    assert caught.value.location == str(big)
    assert "too large: 4,194,305 bytes, the limit is 4,194,304" in caught.value.message


def test_a_config_at_the_size_limit_is_read(tmp_path: Path) -> None:
    config = tmp_path / "ctsync.yaml"
    text = HEADER + "links: []\n"
    config.write_text(text + "#" * (MAX_CONFIG_BYTES - len(text) - 1) + "\n")
    assert config.stat().st_size == MAX_CONFIG_BYTES
    assert load(config).links == ()


def test_a_directory_is_no_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load(tmp_path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "ctsync.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        load(fifo)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_dev_zero_is_refused_without_reading_it() -> None:
    with pytest.raises(ConfigError, match="not a regular file"):
        load("/dev/zero")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_a_secret_file_that_never_ends_is_refused(tmp_path: Path) -> None:
    state = loads(
        HEADER.replace("client_secret_env: CONTOSO_SECRET", "client_secret_file: /dev/zero"),
        path=tmp_path / "ctsync.yaml",
    )
    with pytest.raises(ConfigError, match="not a regular file") as caught:
        state.tenants["contoso"].auth.resolve(base_dir=tmp_path)
    assert caught.value.location == f"{tmp_path / 'ctsync.yaml'}:5:104"


def test_a_huge_secret_file_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "s.secret"
    with secret.open("wb") as file:
        file.truncate(10**9)
    state = loads(
        HEADER.replace("client_secret_env: CONTOSO_SECRET", "client_secret_file: s.secret"),
        path=tmp_path / "ctsync.yaml",
    )
    with pytest.raises(ConfigError, match="too large"):
        state.tenants["contoso"].auth.resolve(base_dir=tmp_path)


# -- 4. ranges ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("snippet", "location", "message"),
    [
        (
            "    sync: {deletion_threshold: 100000000000000000000000000000}\n",
            "c.yaml:12:32",
            "links[0].sync.deletion_threshold: must be at most 2147483647 "
            "(got 100000000000000000000000000000)",
        ),
        (
            "    sync: {deletion_threshold: 2147483648}\n",
            "c.yaml:12:32",
            "must be at most 2147483647",
        ),
        (
            "    sync: {scope: {rollout: {pilot: P, gate: {min_cycles: 1001}}}}\n",
            "c.yaml:12:59",
            "links[0].sync.scope.rollout.gate.min_cycles: must be at most 1000 (got 1001)",
        ),
        (
            "    sync: {scope: {rollout: {pilot: P, gate: {max_failure_rate: .nan}}}}\n",
            "c.yaml:12:65",
            "links[0].sync.scope.rollout.gate.max_failure_rate: must be a number, not nan",
        ),
        (
            "    sync: {scope: {rollout: {pilot: P, gate: {max_failure_rate: .inf}}}}\n",
            "c.yaml:12:65",
            "max_failure_rate: must be a number, not inf",
        ),
    ],
    ids=["threshold-huge", "threshold-int32", "min-cycles", "nan-rate", "inf-rate"],
)
def test_numbers_out_of_range(snippet: str, location: str, message: str) -> None:
    error = error_of(LINK + snippet)
    assert error.location == location
    assert message in error.message


def test_numbers_at_the_bounds_are_accepted() -> None:
    state = load_text(
        LINK + "    sync:\n      deletion_threshold: 2147483647\n"
        "      scope: {rollout: {pilot: P, gate: {min_cycles: 1000, max_failure_rate: 1}}}\n"
    )
    sync = state.links[0].sync
    assert sync.deletion_threshold == 2**31 - 1
    assert sync.rollout is not None
    assert sync.rollout.min_cycles == 1000


# -- 5. regular expressions -----------------------------------------------------------------------


def test_an_invalid_regex_in_a_filter_is_placed_at_the_character() -> None:
    error = error_of(LINK + "    sync: {scope: {filter: \"jobTitle REGEX MATCH '^(CEO|CFO'\"}}\n")
    assert error.location == "c.yaml:12:52"  # the "(" that is never closed
    assert error.message == (
        "links[0].sync.scope.filter: REGEX MATCH needs a valid regular expression: "
        "missing ), unterminated subpattern"
    )


@pytest.mark.parametrize(
    ("operator", "pattern", "problem"),
    [
        ("REGEX MATCH", "[a-", "unterminated character set"),
        ("not_regex_match", "a**", "multiple repeat"),
        ("REGEX MATCH", "[z-a]", "bad character range z-a"),
        ("REGEX MATCH", "(a))", "unbalanced parenthesis"),
        ("REGEX MATCH", r"\2", "invalid group reference 2"),
    ],
)
def test_invalid_regexes_are_refused(operator: str, pattern: str, problem: str) -> None:
    error = error_of(LINK + f"    sync: {{scope: {{filter: 'x {operator} \"{pattern}\"'}}}}\n")
    assert problem in error.message


@pytest.mark.parametrize(
    "pattern",
    [
        r"^(?<year>\d{4})-\k<year>$",
        r"^\p{Lu}\p{Ll}+$",
        r"(?i)ceo|(?-i:CFO)",
        r"abc(?i)def",
        r"^\d+\z",
        r"[a-z-[aeiou]]",
        r"(?'n'x)",
        r"\e\cA",
        r"^[^@]+@contoso\.com$",
    ],
)
def test_dotnet_regex_syntax_is_accepted(pattern: str) -> None:
    assert regex_problem(pattern) is None


def test_a_regex_backslash_reaches_graph_as_written() -> None:
    # It used to escape any character, so '^\d+$' silently became '^d+$'.
    [[clause]] = parse_filter(r"employeeId REGEX MATCH '^\d+\.\d$'")
    assert clause.values == (r"^\d+\.\d$",)
    [[quoted, backslash]] = parse_filter(r"a EQUALS 'it\'s' AND b EQUALS 'c:\\d'")
    assert quoted.values == ("it's",)
    assert backslash.values == ("c:\\d",)


def test_an_invalid_regex_in_replace_is_refused() -> None:
    call = 'Replace([mail], "x", "(a", "g", "b", "p", "t")'
    snippet = f"    sync: {{mappings: {{mail: '{call}'}}}}\n"
    error = error_of(LINK + snippet)
    assert error.location == "c.yaml:12:52"  # the "(" inside the string
    assert "RegularExpression needs a valid regular expression: missing )" in error.message


# -- 6. control characters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("snippet", "location", "message"),
    [
        (
            '    sync: {app_display_name: "CTS\\nEvil"}\n',
            "c.yaml:12:34",
            "links[0].sync.app_display_name: contains the control character '\\n' (U+000A); "
            "must be printable text on one line",
        ),
        (
            '    sync: {app_display_name: "CTS \\e[31mred"}\n',
            "c.yaml:12:35",
            "contains the control character '\\x1b' (U+001B)",
        ),
        ('    sync: {app_display_name: "CTS\\x7f"}\n', "c.yaml:12:34", "(U+007F)"),
        ('    sync: {app_display_name: "CTS\\x85"}\n', "c.yaml:12:34", "(U+0085)"),
        ('    sync: {app_display_name: "CTS\\x9b"}\n', "c.yaml:12:34", "(U+009B)"),
        (
            '    sync: {scope: {assigned: [{group: "Pilot\\r"}]}}\n',
            "c.yaml:12:45",
            "links[0].sync.scope.assigned[0].group: contains the control character '\\r'",
        ),
        (
            '    sync: {mappings: {companyName: {constant: "Contoso\\tLtd"}}}\n',
            "c.yaml:12:55",
            "contains the control character '\\t'",
        ),
        (
            "    sync: {scope: {filter: \"department EQUALS 'a\\eb'\"}}\n",
            "c.yaml:12:49",
            "may hold only printable text and line breaks",
        ),
        (
            '    sync: {mappings: {jobTitle: "\\"Boss\\x07\\""}}\n',
            "c.yaml:12:33",  # escapes before it: the value's start
            "(U+0007)",
        ),
    ],
    ids=["newline", "escape", "del", "c1-nel", "c1-csi", "group", "constant", "filter", "expr"],
)
def test_control_characters_are_refused(snippet: str, location: str, message: str) -> None:
    error = error_of(LINK + snippet)
    assert error.location == location
    assert message in error.message


def test_control_characters_elsewhere_are_refused() -> None:
    error = error_of('templates:\n  t: {description: "x\\by"}\n')
    assert error.location == "c.yaml:10:22"
    assert "(U+0008)" in error.message
    cloud = (
        "  tailspin:\n    tenant_id: 3d3c0000-0000-4000-8000-000000000003\n"
        "    cloud: {graph_url: 'https://127.0.0.1:1/v1.0', authority: 'https://127.0.0.1:1',\n"
        '            name: "emu\\e]0;title\\a"}\n'
        "    auth: {method: azure_cli}\n"
    )
    assert "tenants.tailspin.cloud.name: contains the control" in error_of(cloud).message
    # urlsplit drops a tab or newline from a URL without a word; refuse it instead.
    url = cloud.replace("'https://127.0.0.1:1/v1.0'", '"https://127.0.0.1:1/v1.0\\n"')
    assert "cloud.graph_url: contains the control character '\\n'" in error_of(url).message
    secret_file = HEADER.replace("client_secret_env: CONTOSO_SECRET", 'client_secret_file: "a\\nb"')
    assert "client_secret_file: contains the control" in error_of(secret_file, header=False).message


def test_line_breaks_are_layout_in_multi_line_text() -> None:
    state = load_text(
        "templates:\n"
        "  t:\n"
        "    description: |\n"
        "      Contoso staff,\n"
        "      \tas members.\n"
        "    sync:\n"
        "      scope:\n"
        "        filter: |\n"
        "          department EQUALS 'Sales'\n"
        "          AND country EQUALS 'US'\n"
        "links:\n  - {source: contoso, target: fabrikam, template: t}\n"
    )
    [group] = state.links[0].sync.scope
    assert [c.values for c in group.clauses] == [("Sales",), ("US",)]


# -- 7. CA bundles and certificates ---------------------------------------------------------------

CLOUD = (
    "  emu:\n    tenant_id: 3d3c0000-0000-4000-8000-000000000009\n"
    "    cloud: {graph_url: 'https://127.0.0.1:1/v1.0', authority: 'https://127.0.0.1:1',\n"
    "            ca_bundle: ca.pem}\n"
    "    auth: {method: azure_cli}\n"
)
CERTIFICATE = (
    "  cert:\n    tenant_id: 3d3c0000-0000-4000-8000-000000000009\n"
    f"    auth: {{method: certificate, client_id: {CLIENT_ID}, certificate_path: c.pem}}\n"
)


def _config_error(text: str, base: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        loads(HEADER + text, path="c.yaml", base_dir=base)
    return caught.value


def test_a_garbage_ca_bundle_is_placed_at_the_key(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("this is not a certificate\n")
    error = _config_error(CLOUD, tmp_path)
    assert error.location == "c.yaml:12:24"
    assert "is not a PEM file of CA certificates" in error.message
    with pytest.raises(ConfigError, match="not a PEM file"):
        check_ca_bundle(str(tmp_path / "ca.pem"))


def test_a_ca_bundle_that_is_a_directory_or_device_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").mkdir()
    assert "(it is a directory)" in _config_error(CLOUD, tmp_path).message
    if Path("/dev/zero").exists():
        with pytest.raises(ConfigError, match="a FIFO, socket or device"):
            check_ca_bundle("/dev/zero")


def test_a_real_ca_bundle_is_accepted(tmp_path: Path) -> None:
    generate_tls(tmp_path)
    state = loads(HEADER + CLOUD, path="c.yaml", base_dir=tmp_path)
    assert state.tenants["emu"].cloud.ca_bundle == str(tmp_path / "ca.pem")


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0,
    reason="root reads a file whatever its mode",
)
def test_an_unreadable_ca_bundle_and_certificate_are_placed(tmp_path: Path) -> None:
    files = generate_tls(tmp_path)
    files.ca_cert.chmod(0)
    assert "Permission denied" in _config_error(CLOUD, tmp_path).message
    certificate = tmp_path / "c.pem"
    certificate.write_bytes(files.server_key.read_bytes() + files.server_cert.read_bytes())
    certificate.chmod(0)
    error = _config_error(CERTIFICATE, tmp_path)
    assert error.location == "c.yaml:11:100"
    assert "Permission denied" in error.message


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a certificate\n", "is not a certificate: expected PEM"),
        (b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "lacks the"),
    ],
    ids=["garbage", "no-key"],
)
def test_a_certificate_that_is_there_must_be_usable(
    tmp_path: Path, content: bytes, message: str
) -> None:
    (tmp_path / "c.pem").write_bytes(content)
    error = _config_error(CERTIFICATE, tmp_path)
    assert error.location == "c.yaml:11:100"
    assert error.message.startswith("tenants.cert.auth.certificate_path: auth.certificate_path")
    assert message in error.message


def test_a_certificate_not_there_yet_is_checked_when_signing_in(tmp_path: Path) -> None:
    # The examples name certificates that exist only where ctsync runs.
    state = loads(HEADER + CERTIFICATE, path="c.yaml", base_dir=tmp_path)
    assert state.tenants["cert"].auth.certificate_path == "c.pem"
    files = generate_tls(tmp_path / "tls")
    (tmp_path / "c.pem").write_bytes(files.server_key.read_bytes() + files.server_cert.read_bytes())
    loads(HEADER + CERTIFICATE, path="c.yaml", base_dir=tmp_path)
    check_certificate(str(tmp_path / "c.pem"))


def test_a_certificate_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "c.pem").mkdir()
    assert "(it is a directory)" in _config_error(CERTIFICATE, tmp_path).message
    fifo = tmp_path / "fifo.pem"
    if hasattr(os, "mkfifo"):
        os.mkfifo(fifo)
        assert stat.S_ISFIFO(fifo.stat().st_mode)
        with pytest.raises(ConfigError, match="a FIFO, socket or device"):
            check_certificate(str(fifo))


def test_a_file_path_through_a_file_is_placed(tmp_path: Path) -> None:
    # ENOTDIR takes the same path as a permission error, and runs as root too.
    (tmp_path / "c.pem").write_text("x")
    error = _config_error(CERTIFICATE.replace("c.pem", "c.pem/inner.pem"), tmp_path)
    assert error.location == "c.yaml:11:100"
    assert "is not a readable file (Not a directory)" in error.message
    error = _config_error(CLOUD.replace("ca.pem", "c.pem/ca.pem"), tmp_path)
    assert error.location == "c.yaml:12:24"
    assert "is not a readable file (Not a directory)" in error.message
