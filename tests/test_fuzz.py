"""Fuzz campaign: every input teardown parses either parses or fails with its documented error.

One hypothesis test per input kind (Pulumi state, config, plan file, tar stream, sandbox
scenario, journal plan JSON). Each strategy mixes (a) random bytes or text, (b) random JSON/TOML
values, (c) mutations of a valid example (byte-level edits and structural edits of the parsed
document), and (d) hostile shapes (deep nesting, long numbers) kept below the sizes of the known
crashes, each kept as a regression test at the end of this module (all fixed).

The pass condition is the same everywhere: success, or the documented error type whose
``str()`` is one non-empty line; any other exception fails the test.

The number of cases per test comes from ``TEARDOWN_FUZZ_EXAMPLES`` (default 300, so the normal
suite stays fast). The full campaign (see docs/fuzzing.md)::

    TEARDOWN_FUZZ_EXAMPLES=10000 .venv/bin/pytest -q -x -p no:randomly tests/test_fuzz.py
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import tarfile
import tomllib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from teardown.adapters.huawei.refunds import estimate
from teardown.adapters.pulumi.state import parse_state
from teardown.adapters.ssh.tarstream import Member, TarError, TarParser
from teardown.app.config import parse_config
from teardown.app.planfile import read_plan_file, write_plan_file
from teardown.core.config import Config
from teardown.core.errors import ConfigError, InputError, StateError
from teardown.core.model import BillingMode
from teardown.core.planner import make_plan
from teardown.engine.codec import plan_from_json, plan_to_json
from teardown.sandbox.scenario import BUNDLED, load_scenario
from tests.helpers import network, server, volume

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = int(os.environ.get("TEARDOWN_FUZZ_EXAMPLES", "300"))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
# pyproject sets a 120 s per-test timeout; a 10,000-case campaign needs more.
TIMEOUT = pytest.mark.timeout(max(120, EXAMPLES // 4))
SAFE_DEPTH = 100
"""Nesting the fuzz strategies generate (the deeper known crashes are tracked below)."""
SAFE_DIGITS = 4000
"""Longest number the fuzz strategies generate (Python refuses int() past 4300 digits)."""


# -- the pass condition ------------------------------------------------------------------------


def check(call: Callable[[], object], documented: type[Exception]) -> None:
    """``call`` succeeds or raises ``documented`` with a one-line message; anything else escapes."""
    try:
        call()
    except documented as e:
        message = str(e)
        assert message, f"empty {type(e).__name__} message"
        assert "\n" not in message and "\r" not in message, f"multi-line message: {message!r}"


# -- generic strategies ------------------------------------------------------------------------

TOKENS = [
    b'"',
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"=",
    b"[[",
    b"]]",
    b"#",
    b'"""',
    b"'''",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"null",
    b"true",
    b"-1",
    b"0",
    b"1e999",
    b"-1e999",
    b"NaN",
    b"Infinity",
    b"nan",
    b"inf",
    b"\n",
    b"\r\n",
    b"\x00",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    "é".encode(),
    b"9" * 40,
    b"1979-05-27T07:32:00Z",
]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
)


def json_values(strings: list[str] | None = None) -> st.SearchStrategy[Any]:
    """Random JSON values; ``strings`` (taken from a seed document) make the keys and leaves
    plausible so that deep paths get exercised too."""
    leaves = json_scalars
    keys: st.SearchStrategy[str] = st.text(max_size=12)
    if strings:
        leaves = leaves | st.sampled_from(strings)
        keys = keys | st.sampled_from(strings)
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=16,
    )


def _strings(doc: Any) -> Iterator[str]:
    if isinstance(doc, str):
        yield doc
    elif isinstance(doc, list):
        for x in doc:
            yield from _strings(x)
    elif isinstance(doc, dict):
        for k, v in doc.items():
            yield k
            yield from _strings(v)


def strings_of(doc: Any) -> list[str]:
    return sorted(set(_strings(doc)))


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(doc, list):
        for i, x in enumerate(doc):
            yield from _paths(x, (*prefix, i))
    elif isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


@st.composite
def byte_mutant(draw: st.DrawFn, seed: bytes) -> bytes:
    """A few byte-level edits of ``seed``: flips, overwrites, deletions, insertions, duplicated
    ranges, splices of syntax tokens, truncation."""
    buf = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        n = len(buf)
        i = draw(st.integers(0, n))
        op = draw(st.sampled_from(["flip", "set", "delete", "insert", "token", "dup", "truncate"]))
        if op == "flip" and i < n:
            buf[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and i < n:
            buf[i] = draw(st.integers(0, 255))
        elif op == "delete":
            del buf[i : i + draw(st.integers(1, 64))]
        elif op == "insert":
            buf[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif op == "token":
            buf[i:i] = draw(st.sampled_from(TOKENS))
        elif op == "dup":
            j = draw(st.integers(i, min(n, i + 256)))
            buf[j:j] = buf[i:j]
        elif op == "truncate":
            del buf[i:]
    return bytes(buf)


@st.composite
def doc_mutant(draw: st.DrawFn, seed_text: str, values: st.SearchStrategy[Any]) -> Any:
    """A few structural edits of the JSON-shaped document: replace, delete, add or duplicate."""
    doc = json.loads(seed_text)  # a fresh copy, cheaper than deepcopy
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(list(_paths(doc))))
        op = draw(st.sampled_from(["replace", "replace", "delete", "add", "dup"]))
        if not path:
            if op == "replace":
                doc = draw(values)
            continue
        parent, key = _get(doc, path[:-1]), path[-1]
        if op == "replace":
            parent[key] = draw(values)
        elif op == "delete":
            del parent[key]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=12))] = draw(values)
        elif op == "add":
            parent.insert(key, draw(values))
        elif op == "dup" and isinstance(parent, list):
            parent.append(json.loads(json.dumps(parent[key])))
    return doc


def deep(kind: str) -> st.SearchStrategy[str]:
    """Hostile shapes below the known crash sizes: nesting and long numbers."""
    depth = st.integers(1, SAFE_DEPTH)
    if kind == "json":
        return (
            depth.map(lambda d: "[" * d + "]" * d)
            | depth.map(lambda d: '{"a":' * d + "1" + "}" * d)
            | st.integers(1, SAFE_DIGITS).map(lambda n: "9" * n)
            | st.integers(1, SAFE_DIGITS).map(lambda n: "0." + "1" * n + "e-99999")
        )
    return (
        depth.map(lambda d: "a = " + "[" * d + "]" * d)
        | depth.map(lambda d: "a = " + "{b = " * d + "1" + "}" * d)
        | depth.map(lambda d: "\n".join(f"[{'.'.join(['t'] * (i + 1))}]" for i in range(d)))
        | st.integers(1, SAFE_DIGITS).map(lambda n: "a = " + "9" * n)
    )


def dump_json(draw: st.DrawFn, doc: Any) -> str:
    return json.dumps(
        doc, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, 1]))
    )


# -- a small TOML writer for structural mutations ----------------------------------------------


def _toml_key(key: str) -> str:
    return json.dumps(key)


def _toml_value(value: Any) -> str:
    if value is None:
        return '""'  # TOML has no null
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(x) for x in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


def to_toml(doc: Any) -> str:
    if not isinstance(doc, dict):
        doc = {"value": doc}
    return "\n".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in doc.items()) + "\n"


def toml_inputs(seed_text: str) -> st.SearchStrategy[bytes]:
    """TOML file contents: random, random values, byte and structural mutants, hostile."""
    seed = tomllib.loads(seed_text)
    seed_json = json.dumps(seed, default=str)
    values = json_values(strings_of(seed))
    return st.one_of(
        st.binary(max_size=512),
        st.text(max_size=512).map(lambda t: t.encode("utf-8", "surrogatepass")),
        values.map(lambda v: to_toml(v).encode()),
        byte_mutant(seed_text.encode()),
        doc_mutant(seed_json, values).map(lambda d: to_toml(d).encode()),
        deep("toml").map(str.encode),
    )


# -- 1. Pulumi state ---------------------------------------------------------------------------

STATE_TEXT = (ROOT / "examples" / "huawei-test-env.json").read_text(encoding="utf-8")
STATE_VALUES = json_values(strings_of(json.loads(STATE_TEXT)))


@st.composite
def state_inputs(draw: st.DrawFn) -> str | bytes:
    choice = draw(st.integers(0, 5))
    if choice == 0:
        return draw(st.binary(max_size=512))
    if choice == 1:
        return draw(st.text(max_size=512))
    if choice == 2:
        return dump_json(draw, draw(STATE_VALUES))
    if choice == 3:
        return draw(byte_mutant(STATE_TEXT.encode()))
    if choice == 4:
        return dump_json(draw, draw(doc_mutant(STATE_TEXT, STATE_VALUES)))
    return draw(deep("json"))


@pytest.mark.slow
@TIMEOUT
@FUZZ
@given(state_inputs())
def test_fuzz_pulumi_state(text: str | bytes) -> None:
    check(lambda: parse_state(text, "fuzz.json"), StateError)


# -- 2. config ---------------------------------------------------------------------------------

CONFIG_TEXT = (ROOT / "examples" / "teardown.toml").read_text(encoding="utf-8")


@pytest.mark.slow
@TIMEOUT
@FUZZ
@given(toml_inputs(CONFIG_TEXT))
def test_fuzz_config(data: bytes) -> None:
    # parse_config takes text: what load_config would have read (it refuses non-UTF-8 itself).
    text = data.decode("utf-8", "replace")
    check(lambda: parse_config(text, "teardown.toml"), ConfigError)


# -- shared example plan (plan files and journal plans) ----------------------------------------

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def example_plan_json() -> str:
    net = network("net")
    resources = [
        net,
        server("web", deps=(net.urn,), tags=(("env", "test"),)),
        server("db", BillingMode.PRE_PAID, pending=("order-1",), auto_renew=True),
        volume("data", parent=server("db").urn),
    ]
    return plan_to_json(make_plan(resources, Config(), "dev", now=NOW, estimator=estimate))


PLAN_JSON = example_plan_json()
PLAN_VALUES = json_values(strings_of(json.loads(PLAN_JSON)))


# -- 3. plan files -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plan_file_seed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A reusable file for the fuzzed bytes, and the text of a valid plan file."""
    tmp = tmp_path_factory.mktemp("fuzz-plan")
    valid = tmp / "valid.json"
    plan = plan_from_json(PLAN_JSON, "seed")
    write_plan_file(valid, plan, {"servers": ["web", "db"]}, CONFIG_TEXT, NOW)
    return tmp / "fuzz.json", valid.read_text(encoding="utf-8")


def seal(body: Any) -> Any:
    """Recompute the digest the way write_plan_file does, so edits get past the digest check."""
    if isinstance(body, dict):
        unsealed = {k: v for k, v in body.items() if k != "digest"}
        text = json.dumps(unsealed, sort_keys=True)
        body["digest"] = hashlib.sha256(text.encode()).hexdigest()
    return body


@st.composite
def plan_file_inputs(draw: st.DrawFn, seed_text: str) -> bytes:
    choice = draw(st.integers(0, 5))
    if choice == 0:
        return draw(st.binary(max_size=512))
    if choice == 1:
        return dump_json(draw, seal(draw(PLAN_VALUES))).encode()
    if choice == 2:
        return draw(byte_mutant(seed_text.encode()))
    if choice == 3:
        body = draw(doc_mutant(seed_text, PLAN_VALUES))
        return dump_json(draw, seal(body) if draw(st.booleans()) else body).encode()
    if choice == 4:  # edit only the embedded plan, then re-seal: reaches plan validation
        body = json.loads(seed_text)
        body["plan"] = draw(doc_mutant(json.dumps(body["plan"]), PLAN_VALUES))
        return dump_json(draw, seal(body)).encode()
    return draw(deep("json")).encode()


@pytest.mark.slow
@TIMEOUT
def test_fuzz_plan_file(plan_file_seed: tuple[Path, str]) -> None:
    path, seed_text = plan_file_seed
    read_plan_file(path.with_name("valid.json"))  # the seed itself is valid

    @FUZZ
    @given(plan_file_inputs(seed_text))
    def run(data: bytes) -> None:
        path.write_bytes(data)
        check(lambda: read_plan_file(path), InputError)

    run()


# -- 4. tar streams ----------------------------------------------------------------------------


class Looping(Exception):
    """The parser reported more members than the stream has header blocks: it went back."""


class RecordingSink:
    """Records members and counts body bytes; asks for the bodies of every other member.

    With ``limit``, raises Looping past that many members (turns a parser hang into a failure).
    """

    def __init__(self, limit: int | None = None) -> None:
        self.members: list[Member] = []
        self.body_bytes = 0
        self.ended = 0
        self.limit = limit

    def member(self, member: Member, raw_header: bytes) -> bool:
        self.members.append(member)
        if self.limit is not None and len(self.members) > self.limit:
            raise Looping(f"{len(self.members)} members, at most {self.limit} possible")
        return len(self.members) % 2 == 1

    def data(self, chunk: memoryview) -> None:
        self.body_bytes += len(chunk)

    def end_member(self) -> None:
        self.ended += 1


def _tar_seed(fmt: int) -> bytes:
    out = io.BytesIO()
    pax = {"comment": "fuzz seed"} if fmt == tarfile.PAX_FORMAT else None
    with tarfile.open(fileobj=out, mode="w", format=fmt, pax_headers=pax) as tar:
        d = tarfile.TarInfo("srv/www")
        d.type = tarfile.DIRTYPE
        tar.addfile(d)
        for name, body in [
            ("srv/www/index.html", b"<h1>shop</h1>\n"),
            ("srv/www/" + "deep/" * 30 + "long-name.txt", b"x" * 700),
            ("srv/www/ünïcode-名前.txt", b"utf-8 name"),
            ("srv/www/empty", b""),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(body)
            info.mtime = 1_790_000_000
            tar.addfile(info, io.BytesIO(body))
        link = tarfile.TarInfo("srv/www/current")
        link.type = tarfile.SYMTYPE
        link.linkname = "../" + "target/" * 25 + "release"
        tar.addfile(link)
        hard = tarfile.TarInfo("srv/www/index-copy.html")
        hard.type = tarfile.LNKTYPE
        hard.linkname = "srv/www/index.html"
        tar.addfile(hard)
    return out.getvalue()


TAR_SEEDS = [_tar_seed(tarfile.GNU_FORMAT), _tar_seed(tarfile.PAX_FORMAT)]


def _seal_header(block: bytearray) -> None:
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)


def _is_header(block: bytes | bytearray) -> bool:
    stored = block[148:156].split(b"\0", 1)[0].strip()
    try:
        want = int(stored, 8)
    except ValueError:
        return False
    return sum(block[:148]) + 8 * 32 + sum(block[156:]) == want


TAR_FIELDS = [(0, 100), (100, 108), (124, 136), (136, 148), (156, 157), (157, 257), (257, 265)]
TAR_FIELDS += [(345, 500)]
OCTALS = [b"0", b"7", b"777777777777", b"-1", b"8", b" 12 ", b"\x80" + b"\0" * 10 + b"\x05"]
OCTALS += [b"\xff" * 12, b"\xc0" + b"\0" * 10 + b"\x01", b"00000001000", b""]


@st.composite
def tar_field_mutant(draw: st.DrawFn, seed: bytes) -> bytes:
    """Overwrite header fields (or pax records) of the seed, then fix the header checksums so
    the edit reaches the field parsers instead of the checksum check."""
    buf = bytearray(seed)
    headers = [i for i in range(0, len(buf) - 511, 512) if _is_header(buf[i : i + 512])]
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.sampled_from(headers))
        if draw(st.integers(0, 3)) == 0:  # the block after a header: pax records, long names
            start = min(at + 512, len(buf) - 1)
            piece = draw(st.binary(max_size=64) | st.sampled_from(PAX_RECORDS))
            offset = draw(st.integers(0, 64))
            buf[start + offset : start + offset + len(piece)] = piece
            del buf[len(seed) :]
            continue
        lo, hi = draw(st.sampled_from(TAR_FIELDS))
        value = draw(st.binary(max_size=hi - lo) | st.sampled_from([*OCTALS, b"x", b"L", b"K"]))
        buf[at + lo : at + hi] = value[: hi - lo].ljust(hi - lo, b"\0")
    for i in headers:
        header = buf[i : i + 512]
        _seal_header(header)
        buf[i : i + 512] = header
    return bytes(buf)


def _pax_record(key: bytes, value: bytes) -> bytes:
    body = b" " + key + b"=" + value + b"\n"
    n = len(body) + 1
    while len(str(n).encode()) + len(body) != n:
        n += 1
    return str(n).encode() + body


PAX_VALUES = [b"-5", b"-1", b"0", b"1_000", b" 7 ", b"nan", b"inf", b"-inf", b"1e400", b""]
PAX_VALUES += [b"\xff\xfe", "١٢".encode(), b"9" * 30, b"0x10", b"1.5", b"/etc/passwd", b"../.."]
PAX_KEYS = [b"path", b"linkpath", b"size", b"mtime", b"uid", b"comment", b"", b"=", b"\xff"]
PAX_RECORDS = [_pax_record(k, v) for k in PAX_KEYS[:4] for v in PAX_VALUES]
PAX_RECORDS += [b"0 path=x\n", b"99 size=1\n", b"abc path=x\n", b"3 =\n", b"-1 a=b\n"]


@st.composite
def crafted_tar(draw: st.DrawFn) -> bytes:
    """Streams built header by header: pax, GNU long-name and odd typeflags, sizes that lie."""
    out = bytearray()
    for _ in range(draw(st.integers(0, 5))):
        typeflag = draw(st.sampled_from([*b"0125xgLK3467", 0, ord("Z")]))
        if typeflag in b"xg":
            records = draw(
                st.lists(
                    st.builds(_pax_record, st.sampled_from(PAX_KEYS), st.sampled_from(PAX_VALUES))
                    | st.sampled_from(PAX_RECORDS),
                    max_size=4,
                )
            )
            body = b"".join(records)
        else:
            body = draw(st.binary(max_size=600))
        size = len(body)
        if draw(st.integers(0, 4)) == 0:
            size_field = draw(st.sampled_from(OCTALS))
        else:
            size_field = b"%011o" % size
        header = bytearray(512)
        name = draw(st.binary(min_size=1, max_size=100))
        header[0 : len(name)] = name
        header[100:108] = b"0000644\0"
        header[124:136] = size_field[:12].ljust(12, b"\0")
        header[136:148] = draw(st.sampled_from(OCTALS))[:12].ljust(12, b"\0")
        header[156] = typeflag
        header[257:265] = draw(st.sampled_from([b"ustar\x0000", b"ustar  \0", b"\0" * 8]))
        header[345:350] = draw(st.sampled_from([b"", b"pre"])).ljust(5, b"\0")
        _seal_header(header)
        out += header + body + b"\0" * (-len(body) % 512)
    out += draw(st.sampled_from([b"\0" * 1024, b"\0" * 512, b"", b"\0" * 512 + b"junk"]))
    return bytes(out)


@st.composite
def tar_inputs(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    choice = draw(st.integers(0, 3))
    if choice == 0:
        data = draw(st.binary(max_size=2048))
    elif choice == 1:
        data = draw(byte_mutant(draw(st.sampled_from(TAR_SEEDS))))
    elif choice == 2:
        data = draw(tar_field_mutant(draw(st.sampled_from(TAR_SEEDS))))
    else:
        data = draw(crafted_tar())
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=6)))
    return data, cuts


@pytest.mark.slow
@TIMEOUT
@FUZZ
@given(tar_inputs())
def test_fuzz_tar_stream(case: tuple[bytes, list[int]]) -> None:
    data, cuts = case
    parser = TarParser(RecordingSink(limit=len(data) // 512 + 1), max_meta=4096)

    def run() -> None:
        for lo, hi in zip([0, *cuts], [*cuts, len(data)], strict=True):
            parser.feed(memoryview(data)[lo:hi])
        parser.close()

    check(run, TarError)


def test_tar_seeds_parse() -> None:
    for seed in TAR_SEEDS:
        sink = RecordingSink()
        parser = TarParser(sink)
        parser.feed(seed)
        parser.close()
        assert parser.complete
        assert [m.kind for m in sink.members].count("symlink") == 1
        assert any(len(m.name) > 100 for m in sink.members)


# -- 5. sandbox scenarios ----------------------------------------------------------------------

SCENARIO_TEXT = (BUNDLED / "demo.toml").read_text(encoding="utf-8")


@pytest.mark.slow
@TIMEOUT
def test_fuzz_scenario(tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("fuzz-scenario") / "fuzz.toml"
    path.write_text(SCENARIO_TEXT, encoding="utf-8")
    load_scenario(str(path))  # the seed itself is valid

    @FUZZ
    @given(toml_inputs(SCENARIO_TEXT))
    def run(data: bytes) -> None:
        path.write_bytes(data)
        check(lambda: load_scenario(str(path)), ConfigError)

    run()


# -- 6. plans in the journal -------------------------------------------------------------------


@st.composite
def journal_plan_inputs(draw: st.DrawFn) -> str:
    choice = draw(st.integers(0, 4))
    if choice == 0:
        return draw(st.text(max_size=512))
    if choice == 1:
        return dump_json(draw, draw(PLAN_VALUES))
    if choice == 2:
        return draw(byte_mutant(PLAN_JSON.encode())).decode("utf-8", "replace")
    if choice == 3:
        return dump_json(draw, draw(doc_mutant(PLAN_JSON, PLAN_VALUES)))
    return draw(deep("json"))


@pytest.mark.slow
@TIMEOUT
@FUZZ
@given(journal_plan_inputs())
def test_fuzz_journal_plan(text: str) -> None:
    check(lambda: plan_from_json(text, "journal"), InputError)


# -- crashes this campaign found, fixed since: each kept as a regression test -------------------

DEEP_TOML = "a = " + "[" * 2000 + "]" * 2000 + "\n"
LONG_INT_TOML = "a = " + "9" * 4301 + "\n"


def test_fixed_crash_config_deep_nesting() -> None:
    check(lambda: parse_config(DEEP_TOML, "teardown.toml"), ConfigError)


def test_fixed_crash_config_long_integer() -> None:
    check(lambda: parse_config(LONG_INT_TOML, "teardown.toml"), ConfigError)


def test_fixed_crash_scenario_deep_nesting(tmp_path: Path) -> None:
    path = tmp_path / "deep.toml"
    path.write_text(DEEP_TOML, encoding="utf-8")
    check(lambda: load_scenario(str(path)), ConfigError)


def test_fixed_crash_scenario_long_integer(tmp_path: Path) -> None:
    path = tmp_path / "long.toml"
    path.write_text(LONG_INT_TOML, encoding="utf-8")
    check(lambda: load_scenario(str(path)), ConfigError)


def test_fixed_crash_plan_file_deep_nesting(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    check(lambda: read_plan_file(path), InputError)


def test_fixed_crash_plan_file_long_integer(tmp_path: Path) -> None:
    path = tmp_path / "long.json"
    path.write_text("9" * 4301, encoding="utf-8")
    check(lambda: read_plan_file(path), InputError)


def _tar_header(typeflag: bytes, size: int, name: bytes = b"f") -> bytes:
    header = bytearray(512)
    header[0 : len(name)] = name
    header[100:108] = b"0000644\0"
    header[124:136] = b"%011o\0" % size
    header[156:157] = typeflag
    header[257:265] = b"ustar\x0000"
    _seal_header(header)
    return bytes(header)


def _pax_size_stream(typeflag: bytes, size: bytes) -> bytes:
    record = _pax_record(b"size", size)
    return (
        _tar_header(typeflag, len(record))
        + record.ljust(512, b"\0")
        + _tar_header(b"0", 0)
        + b"\0" * 1024
    )


def test_fixed_crash_tar_negative_global_pax_size() -> None:
    data = _pax_size_stream(b"g", b"-512")
    parser = TarParser(RecordingSink(limit=len(data) // 512 + 1))

    def run() -> None:
        parser.feed(data)
        parser.close()

    check(run, TarError)


def test_fixed_bug_tar_negative_pax_size() -> None:
    data = _pax_size_stream(b"x", b"-5")
    sink = RecordingSink()
    parser = TarParser(sink)
    with pytest.raises(TarError):
        parser.feed(data)
        parser.close()
