"""The protocol reference (docs/protocol.md) and schema (docs/protocol.schema.json) match the code.

- The committed schema is exactly what ``server_stub.protocol.json_schema_text()`` generates.
- Every ```json example in the reference is a real frame: the protocol decoder accepts it, it
  round-trips without losing a field (so a misspelt or renamed field, which the decoder would
  silently ignore, fails), and it validates against the committed schema (JSON Schema 2020-12).
- Every message type has a heading, an example, and a field table whose fields and "Required"
  column match the model; every error code, logout reason and close code is in its table.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import typing
from pathlib import Path

import jsonschema
import msgspec
import pytest

from server_stub import protocol as p

REPO = Path(__file__).resolve().parents[1]
DOC_PATH = REPO / "docs" / "protocol.md"
SCHEMA_PATH = REPO / "docs" / "protocol.schema.json"
REGENERATE = "python -m server_stub schema --output docs/protocol.schema.json"

DOC = DOC_PATH.read_text(encoding="utf-8")
ALL_TYPES = {**p.CLIENT_TYPES, **p.SERVER_TYPES}
SHARED_STRUCTS = {cls.__name__: cls for cls in (p.StateSnapshot, p.AgentReport, p.ResumePoint, p.ReasonInfo,
                                                  p.ReplacedLogin)}


# --------------------------------------------------------------------------- reading the doc


def _examples() -> list[tuple[int, str]]:
    """(line number, text) of every ```json fenced block."""
    found = []
    for match in re.finditer(r"^```json[ \t]*\n(.*?)^```[ \t]*$", DOC, re.M | re.S):
        found.append((DOC.count("\n", 0, match.start()) + 1, match.group(1)))
    return found


def _sections() -> dict[str, list[str]]:
    """Heading text (backticks removed) -> the lines under it, up to the next heading of its level or higher."""
    lines = DOC.splitlines()
    headings = []
    in_fence = False
    for i, line in enumerate(lines):
        if line.startswith("```"):
            in_fence = not in_fence
            continue
        m = re.match(r"^(#{1,6}) (.+?)\s*$", line)
        if m and not in_fence:
            headings.append((i, len(m.group(1)), m.group(2).replace("`", "")))
    sections: dict[str, list[str]] = {}
    for n, (i, level, title) in enumerate(headings):
        end = next((j for j, lv, _ in headings[n + 1:] if lv <= level), len(lines))
        assert title not in sections, f"docs/protocol.md has two headings {title!r}"
        sections[title] = lines[i + 1:end]
    return sections


def _table(lines: list[str], first_header: str) -> list[list[str]]:
    """Rows (cells stripped) of the first Markdown table whose header's first cell is ``first_header``."""
    for i, line in enumerate(lines):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.lstrip().startswith("|") and cells[0] == first_header:
            rows = []
            for row in lines[i + 2:]:
                if not row.lstrip().startswith("|"):
                    break
                rows.append([c.strip() for c in row.strip().strip("|").split("|")])
            return rows
    raise AssertionError(f"no table with a {first_header!r} column found")


def _code(cell: str) -> str:
    m = re.fullmatch(r"`([^`]+)`", cell)
    assert m, f"expected a `code` cell, got {cell!r}"
    return m.group(1)


EXAMPLES = _examples()
SECTIONS = _sections()


def _example_id(line: int, text: str) -> str:
    try:
        return f"line{line}-{json.loads(text).get('type')}"
    except (ValueError, AttributeError):
        return f"line{line}"


# --------------------------------------------------------------------------- schema file


def test_committed_schema_is_generated_from_the_models():
    committed = SCHEMA_PATH.read_text(encoding="utf-8") if SCHEMA_PATH.exists() else None
    assert committed == p.json_schema_text(), (
        f"docs/protocol.schema.json differs from server_stub.protocol.json_schema_text(); "
        f"regenerate it from the repository root with: {REGENERATE}"
    )


def test_schema_command_prints_the_same_schema():
    result = subprocess.run([sys.executable, "-m", "server_stub", "schema"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == p.json_schema_text()


def test_committed_schema_is_a_valid_2020_12_schema():
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


# --------------------------------------------------------------------------- examples


def _committed_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def _direction_schema(schema: dict, title: str) -> dict:
    branch = next(b for b in schema["anyOf"] if b.get("title") == title)
    return {"$schema": schema["$schema"], "$defs": schema["$defs"], **branch}


def _directions(kind: str) -> list[tuple[str, typing.Callable[[str | bytes], p.Message]]]:
    out: list[tuple[str, typing.Callable[[str | bytes], p.Message]]] = []
    if kind in p.CLIENT_TYPES:
        out.append(("ClientToServer", p.decode_client))
    if kind in p.SERVER_TYPES:
        out.append(("ServerToClient", p.decode_server))
    return out


def test_the_doc_has_examples():
    # Guards the extraction itself: a broken regex must not make the example tests pass vacuously.
    assert len(EXAMPLES) >= len(ALL_TYPES)


def test_every_message_type_has_an_example():
    shown = set()
    for _, text in EXAMPLES:
        try:
            shown.add(json.loads(text).get("type"))
        except (ValueError, AttributeError):
            pass  # reported by test_example_decodes
    missing = sorted(set(ALL_TYPES) - shown)
    assert not missing, f"docs/protocol.md has no ```json example of: {missing}"


@pytest.mark.parametrize("line,text", EXAMPLES, ids=[_example_id(*e) for e in EXAMPLES])
def test_example_decodes_and_round_trips(line, text):
    example = json.loads(text)
    assert isinstance(example, dict), f"docs/protocol.md line {line}: an example is one JSON object"
    directions = _directions(str(example.get("type")))
    assert directions, f"docs/protocol.md line {line}: unknown message type {example.get('type')!r}"
    for _, decode in directions:
        try:
            message = decode(text)
        except p.ProtocolError as exc:
            pytest.fail(f"docs/protocol.md line {line}: {exc.code}: {exc.message}")
        # Unknown fields are ignored by the decoder, so compare what it kept with what was written:
        # a field the model does not have (or a field written with its default value) shows here.
        assert msgspec.to_builtins(message) == example, (
            f"docs/protocol.md line {line}: the example has fields the model does not keep"
        )


@pytest.mark.parametrize("line,text", EXAMPLES, ids=[_example_id(*e) for e in EXAMPLES])
def test_example_validates_against_its_direction_in_the_schema(line, text):
    schema = _committed_schema()
    example = json.loads(text)
    directions = _directions(example.get("type"))
    assert directions, f"docs/protocol.md line {line}: unknown message type {example.get('type')!r}"
    for title, _ in directions:
        jsonschema.Draft202012Validator(_direction_schema(schema, title)).validate(example)


def _whole_schema_params():
    return [pytest.param(line, text, id=_example_id(line, text)) for line, text in EXAMPLES]


@pytest.mark.parametrize("line,text", _whole_schema_params())
def test_example_validates_against_the_whole_schema(line, text):
    jsonschema.Draft202012Validator(_committed_schema()).validate(json.loads(text))


# --------------------------------------------------------------------------- headings and tables


def test_every_message_type_has_a_heading():
    missing = sorted(name for name in [*ALL_TYPES, *SHARED_STRUCTS] if name not in SECTIONS)
    assert not missing, f"docs/protocol.md has no heading for: {missing}"


@pytest.mark.parametrize("name", sorted({**ALL_TYPES, **SHARED_STRUCTS}))
def test_field_table_matches_the_model(name):
    cls = ALL_TYPES.get(name) or SHARED_STRUCTS[name]
    assert name in SECTIONS, f"docs/protocol.md has no heading {name!r}"
    expected = {f.encode_name: f.required for f in msgspec.structs.fields(cls)}
    if cls.__struct_config__.tag is not None:
        expected["type"] = True
    rows = _table(SECTIONS[name], "Field")
    documented = {}
    for row in rows:
        assert len(row) == 4, f"{name}: field table rows have 4 cells (field, type, required, meaning): {row}"
        assert row[2] in ("yes", "no"), f"{name}.{row[0]}: Required must be yes or no, not {row[2]!r}"
        documented[_code(row[0])] = row[2] == "yes"
    assert set(documented) == set(expected), (
        f"{name}: fields in docs/protocol.md {sorted(documented)} != fields in the model {sorted(expected)}"
    )
    wrong = {f: documented[f] for f in expected if documented[f] != expected[f]}
    assert not wrong, f"{name}: the Required column is wrong for {sorted(wrong)}"


def test_error_table_lists_every_error_code():
    documented = [_code(row[0]) for row in _table(SECTIONS["Error codes"], "Code")]
    codes = set(typing.get_args(p.ErrorCode))
    assert sorted(set(documented) - codes) == [], "docs/protocol.md documents error codes the protocol lacks"
    assert sorted(codes - set(documented)) == [], "docs/protocol.md's error table misses error codes"
    assert len(documented) == len(set(documented)), "an error code is listed twice"


def test_logout_reason_table_lists_every_reason():
    documented = {_code(row[0]) for row in _table(SECTIONS["Messages"], "Reason")}
    assert documented == set(typing.get_args(p.LogoutReason))


def test_close_code_table_lists_every_close_code():
    """The table lists every code of ``CloseCode`` a side sends; 1006, which none sends, is explained
    below it."""
    sent = {code for code in p.CloseCode if code is not p.CloseCode.ABNORMAL}
    documented = [int(row[0]) for row in _table(SECTIONS["WebSocket close codes"], "Code")]
    assert sorted(documented) == sorted(sent) and len(documented) == len(set(documented))
    assert re.search(r"\b1006\b", "\n".join(SECTIONS["WebSocket close codes"]))
