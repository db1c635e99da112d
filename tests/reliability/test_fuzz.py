"""No traceback and no hang, ever, on any config file or command line.

Three layers: a corpus of hand-picked hostile inputs and systematic mutations of the shipped
example configs (several hundred, each through `ctsync validate`); hypothesis mutating configs
at random; hypothesis building command lines from every command's options and nasty values.
Each input runs under a watchdog; a traceback, an unexpected exception or a hang fails it.
`pytest -m sweep` lets hypothesis run far longer.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctsync.cli import cli
from tests.watchdog import watchdog

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BASES = {path.name: path.read_text() for path in sorted(EXAMPLES.glob("*.yaml"))}

#: Values that have broken YAML loaders, validators and renderers somewhere.
NASTY = [
    "",
    "~",
    "null",
    "[",
    "{",
    "]]",
    "'",
    '"',
    "*undefined",
    "&a [*a]",
    "!!python/object/apply:os.system ['true']",
    "!!binary aGVsbG8=",
    "1e999",
    "-1",
    "0",
    "99999999999999999999999999999999",
    "-9223372036854775809",
    "0x10",
    "0o17",
    ".nan",
    "-.inf",
    "yes",
    "2026-13-45",
    "2026-02-30T25:61:61Z",
    '"\\x00"',
    '"\\u202e reversed"',
    '"line\\nbreak"',
    '"\\x1b[31mred"',
    "x" * 10_000,
    "[" * 200 + "]" * 200,
    "{a: " * 100 + "1" + "}" * 100,
    "- - - - - - -",
    "? complex key",
    "<<: *base",
    "%YAML 1.1",
    "---",
    "...",
    "#",
    "|\n  block",
    ">-",
    "@reserved",
    "`backtick`",
    "ŝŧřäñğë ťëxť",
    "\ufeff",
    "' OR 1 eq 1 --",
    "displayName eq 'x') or (1 eq 1",
    "../../../../etc/passwd",
    "/dev/zero",
]

ALIAS_BOMB = """\
a: &a [x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""

HANDPICKED = {
    "alias bomb": ALIAS_BOMB,
    "deep flow nesting": "[" * 50_000 + "]" * 50_000,
    "deep block nesting": "".join(f"{' ' * i}k{i}:\n" for i in range(300)) + " " * 300 + "v",
    "binary": "\x00\x01\x02\xff\xfe",
    "only a BOM": "\ufeff",
    "tabs for indentation": "version: 1\ntenants:\n\tcontoso: {}\n",
    "a list at the top": "- version: 1\n",
    "a scalar at the top": "just text\n",
    "duplicate keys": "version: 1\nversion: 1\n",
    "huge integer": "version: " + "9" * 5000 + "\n",
    "python tag": "version: !!python/object/apply:os.system ['true']\n",
    "merge of an alias that is not a map": "a: &a [1]\nb:\n  <<: *a\n",
    "recursive alias": "a: &a\n  b: *a\n",
    "many documents": "version: 1\n---\nversion: 1\n",
    "unterminated quote": 'version: "1\n',
}


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _judge(result: Result, what: str) -> None:
    """Exit 0 or 1 (2 for click's usage errors), never a Python exception or traceback."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{what}: {type(result.exception).__name__}: {result.exception}")
    assert "Traceback" not in result.output, f"{what}:\n{result.output}"
    assert result.exit_code in (0, 1, 2), (what, result.exit_code, result.output)


def _validate(tmp: Path, text: str | bytes, what: str) -> Result:
    config = tmp / "ctsync.yaml"
    if isinstance(text, bytes):
        config.write_bytes(text)
    else:
        config.write_text(text, encoding="utf-8", errors="surrogatepass")
    with watchdog(10, what):
        result = _run("validate", "-c", str(config))
    _judge(result, what)
    return result


# -- the corpus -------------------------------------------------------------------------------


def _scalar_spans(line: str) -> Iterator[tuple[int, int]]:
    """Where the values of ``key: value`` pairs are on a line (block or flow style)."""
    for match in re.finditer(r"(?<=: )([^,{}\[\]#\n]+?)(?=\s*(?:[,}\]]|#|$))", line):
        yield match.start(), match.end()


def corpus() -> dict[str, str]:
    """Several hundred malformed variants of the example configs, plus the hand-picked."""
    cases = dict(HANDPICKED)
    for name, text in BASES.items():
        lines = text.splitlines()
        for index, line in enumerate(lines):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cases[f"{name}: line {index + 1} deleted"] = "\n".join(
                lines[:index] + lines[index + 1 :]
            )
            cases[f"{name}: line {index + 1} doubled"] = "\n".join(
                lines[: index + 1] + lines[index:]
            )
            cases[f"{name}: line {index + 1} indented"] = "\n".join(
                [*lines[:index], "   " + line, *lines[index + 1 :]]
            )
            for number, (start, end) in enumerate(_scalar_spans(line)):
                nasty = NASTY[(index * 7 + number) % len(NASTY)]
                changed = line[:start] + nasty + line[end:]
                cases[f"{name}: line {index + 1} value {number} = {nasty[:20]!r}"] = "\n".join(
                    [*lines[:index], changed, *lines[index + 1 :]]
                )
        for cut in range(1, 9):
            cases[f"{name}: cut at {cut}/9"] = text[: len(text) * cut // 9]
    return cases


CORPUS = corpus()


def test_the_corpus_is_large() -> None:
    assert len(CORPUS) >= 200


def test_no_corpus_input_gives_a_traceback_or_hangs(tmp_path: Path) -> None:
    failures: list[str] = []
    refused = 0
    for what, text in CORPUS.items():
        try:
            result = _validate(tmp_path, text, what)
        except AssertionError as exc:
            failures.append(str(exc)[:500])
            continue
        if result.exit_code == 1:
            refused += 1
            # A refusal is one clear line (file:line:col when the file is at fault).
            assert result.output.startswith("error: "), (what, result.output)
    assert failures == []
    assert refused >= 200, refused


def test_the_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    with watchdog(1, "the alias bomb"):
        result = _validate(tmp_path, ALIAS_BOMB, "alias bomb")
    assert result.exit_code == 1
    assert "alias" in result.output.lower() or "values" in result.output.lower()


# -- hypothesis: configs ----------------------------------------------------------------------

mutation = st.one_of(
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.sampled_from(NASTY)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.text(max_size=20)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 200)),
    st.tuples(st.just("swap-lines"), st.integers(0, 500), st.integers(0, 500)),
)


def _mutate(text: str, edits: list[tuple[str, int, object]]) -> str:
    for kind, where, what in edits:
        at = where % (len(text) + 1)
        if kind == "insert":
            text = text[:at] + str(what) + text[at:]
        elif kind == "delete":
            assert isinstance(what, int)
            text = text[:at] + text[at + what :]
        else:
            lines = text.splitlines()
            if lines:
                a, b = where % len(lines), int(str(what)) % len(lines)
                lines[a], lines[b] = lines[b], lines[a]
                text = "\n".join(lines)
    return text


FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SWEEP = settings(FUZZ, max_examples=3000, derandomize=False)


def _config_property(tmp_path: Path, base: str, edits: list[tuple[str, int, object]]) -> None:
    _validate(tmp_path, _mutate(BASES[base], edits), f"{base} with {edits!r}"[:300])


@FUZZ
@given(base=st.sampled_from(sorted(BASES)), edits=st.lists(mutation, min_size=1, max_size=6))
def test_mutated_configs_never_crash(
    tmp_path: Path, base: str, edits: list[tuple[str, int, object]]
) -> None:
    _config_property(tmp_path, base, edits)


@pytest.mark.sweep
@SWEEP
@given(base=st.sampled_from(sorted(BASES)), edits=st.lists(mutation, min_size=1, max_size=12))
def test_mutated_configs_never_crash_sweep(
    tmp_path: Path, base: str, edits: list[tuple[str, int, object]]
) -> None:
    _config_property(tmp_path, base, edits)


# -- hypothesis: command lines ----------------------------------------------------------------

#: Every command a user runs on a config, with the options each takes (the emulator's `serve`
#: and the demo start servers or whole runs: they are covered elsewhere).
COMMANDS: dict[str, list[str]] = {
    "validate": [],
    "plan": ["--link", "--output", "--format", "--out", "--detailed-exitcode"],
    "apply": ["--link", "--output", "--audit-db", "--skip-preflight"],
    "destroy": ["--link", "--output", "--audit-db", "--keep-users", "--duplicates"],
    "preflight": ["--link", "--output", "--audit-db", "--fix"],
    "status": ["--link", "--output"],
    "logs": ["--link", "--since", "--status", "--action", "--page-size", "--output"],
    "provision": ["--link", "--user", "--users", "--output", "--audit-db"],
    "start": ["--link", "--output"],
    "pause": ["--link", "--output"],
    "restart": ["--link", "--reset", "--output"],
    "promote": ["--link", "--output"],
    "audit show": ["--link", "--limit", "--output", "--audit-db"],
    "audit verify": ["--expected-head", "--output", "--audit-db"],
    "init": ["--links", "--from-emulator", "--auth", "--force"],
}
ARGUMENT_VALUES = [
    *NASTY[:30],
    "contoso:fabrikam",
    "contoso:",
    ":",
    "a:b:c",
    "json",
    "text",
    "powershell",
    "24h",
    "99999999999d",
    "-5m",
    "2026-01-01",
    "0",
    "-1",
    "1" * 400,
    "sms-sign-in",
    "escrows,quarantine",
    ",",
    "42:" + "f" * 64,
    "/",
    ".",
    "/nonexistent/dir/file",
    "-",
]


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    command = draw(st.sampled_from(sorted(COMMANDS)))
    args = command.split()
    for option in draw(st.lists(st.sampled_from(COMMANDS[command] or ["--help"]), max_size=4)):
        args.append(option)
        if draw(st.booleans()):
            args.append(draw(st.sampled_from(ARGUMENT_VALUES) | st.text(max_size=12)))
    if draw(st.booleans()):
        args.append(draw(st.sampled_from(ARGUMENT_VALUES)))
    return args


def _command_property(config: Path, args: list[str]) -> None:
    with watchdog(20, f"ctsync {args!r}"):
        result = _run(*args, "-c", str(config)) if args[0] != "init" else _run(*args)
    _judge(result, f"ctsync {args!r}")


@pytest.fixture
def hostile_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A valid config whose tenants cannot be reached: commands that get that far fail fast
    (the secret is missing) instead of talking to anything."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CONTOSO_CLIENT_SECRET", raising=False)
    monkeypatch.delenv("FABRIKAM_CLIENT_SECRET", raising=False)
    monkeypatch.delenv("TAILSPIN_CLIENT_SECRET", raising=False)
    config = tmp_path / "ctsync.yaml"
    config.write_text(BASES["pair.yaml"])
    return config


@FUZZ
@given(args=command_lines())
def test_command_lines_never_crash(hostile_config: Path, args: list[str]) -> None:
    _command_property(hostile_config, args)


@pytest.mark.sweep
@SWEEP
@given(args=command_lines())
def test_command_lines_never_crash_sweep(hostile_config: Path, args: list[str]) -> None:
    _command_property(hostile_config, args)


def test_the_fuzzed_config_needs_secrets_it_does_not_have(hostile_config: Path) -> None:
    # The guard the command-line fuzz relies on: nothing reaches a network.
    assert "_CLIENT_SECRET" in hostile_config.read_text()
    assert not any(k.endswith("_CLIENT_SECRET") for k in os.environ)


def test_found_by_fuzzing_a_complex_key_ruamel_cannot_hash(tmp_path: Path) -> None:
    # hypothesis found it: "unhashable type: 'CommentedMap'" escaped from ruamel's constructor.
    text = (
        "  ? complex key  tenant_id: 22222222-2222-2222-2222-222222222222\n"
        "    sync:\n        deletion_threshold: 50"
    )
    result = _validate(tmp_path, text, "complex key")
    assert result.exit_code == 1
    assert "cannot be read as config data" in result.output
