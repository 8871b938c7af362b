"""The HTML report page: self-contained, escaped, and rendered for real by headless Chromium."""

from __future__ import annotations

import re
import shutil
import stat
import struct
import subprocess
import zlib
from copy import deepcopy
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from teardown.core.config import Config
from teardown.core.model import Billing, BillingMode, Disk, Kind, Resource
from teardown.core.planner import make_plan
from teardown.engine import report_html
from teardown.engine.report import build_report, write_report
from teardown.engine.report_html import render_html, timeline_from_events
from tests.helpers import ECS, make_rig, server, urn

ROOT = Path(__file__).resolve().parent.parent
EVIL = '<script>alert("pwned")</script> & db'
WINDOW = (1200, 1400)


def _report(root: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A real run over the fake cloud: one prepaid server refunded, one failed backup."""
    evil = Resource(
        urn=urn(ECS, "evil-db"),
        type=ECS,
        kind=Kind.SERVER,
        name=EVIL,
        cloud_id="id-evil-db",
        disks=(Disk(id="sys-evil-db", size_gb=40, system=True),),
        billing=Billing(mode=BillingMode.PRE_PAID),
    )
    web = server("web")
    rig = make_rig(root, [evil, web], switches={"snapshot_error": [web.urn]})
    result = rig.runner.start(make_plan([evil, web], Config(), "dev"))
    report = build_report(rig.journal, result.run_id)
    timeline = timeline_from_events(rig.journal.events(result.run_id))
    rig.journal.close()
    return report, timeline


@pytest.fixture
def page(tmp_path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    report, timeline = _report(tmp_path)
    return report, timeline, render_html(report, timeline)


def test_the_run_behind_the_page_has_refunds_and_a_next_step(
    page: tuple[dict[str, Any], list[dict[str, Any]], str],
) -> None:
    report, timeline, _ = page
    by_name = {r["name"]: r for r in report["resources"]}
    assert by_name[EVIL]["refunds"] and by_name[EVIL]["phase"] == "done"
    assert by_name["web"]["phase"] == "failed" and by_name["web"]["next_step"]
    assert {t["urn"] for t in timeline} == {r["urn"] for r in report["resources"]}
    assert all({"urn", "phase", "at", "detail"} <= set(t) for t in timeline)


def test_page_is_self_contained_with_the_three_parts(
    page: tuple[dict[str, Any], list[dict[str, Any]], str],
) -> None:
    _, timeline, html_text = page
    lowered = html_text.lower()
    for external in ("http://", "https://", "src=", "@import", "url(", "<link", "<script"):
        assert external not in lowered, external
    for part in ('id="timeline"', 'id="money"', 'id="backups"'):
        assert html_text.count(part) == 1, part
    svg = html_text[html_text.index('id="timeline"') : html_text.index("</svg>")]
    assert svg.count("<g><title>") == len(timeline)  # one segment per phase change


def test_names_from_the_cloud_are_escaped(
    page: tuple[dict[str, Any], list[dict[str, Any]], str],
) -> None:
    _, _, html_text = page
    assert EVIL not in html_text
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt; &amp; db" in html_text
    # no tag other than the page's own
    tags = set(re.findall(r"<([a-zA-Z][a-zA-Z0-9]*)", html_text))
    assert tags <= {
        "html", "head", "meta", "title", "style", "body", "main", "header", "h1", "h2", "span",
        "div", "section", "svg", "rect", "text", "g", "line", "tspan", "i", "p", "ul", "li", "b",
        "code", "table", "thead", "tbody", "tr", "th", "td", "footer",
    }  # fmt: skip


class _Markup(HTMLParser):
    """Every tag and attribute name of a page, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)


def test_hostile_text_in_names_titles_and_commands_stays_text(
    page: tuple[dict[str, Any], list[dict[str, Any]], str],
) -> None:
    report, timeline, _ = page
    hostile = deepcopy(report)
    breakout = '"><img src=x onerror=alert(1)>'
    web = next(r for r in hostile["resources"] if r["name"] == "web")
    web["name"] = breakout  # a table cell, a timeline label, a list item
    web["urn"] = "urn:<script>alert(2)</script>"  # an SVG <title>
    web["next_step"] = "run `teardown resume <script>alert(3)</script>` then wait"
    web["backups"][0]["sha256"] = breakout  # an attribute value (title="...")
    hostile["scope"] = "</title><script>alert(4)</script>"
    html_text = render_html(hostile, [dict(t, urn=web["urn"]) for t in timeline])

    assert breakout not in html_text and "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html_text
    assert "<script" not in html_text.lower()  # the page ships no script of its own either
    assert "<code>teardown resume &lt;script&gt;alert(3)&lt;/script&gt;</code>" in html_text
    parsed = _Markup()
    parsed.feed(html_text)
    assert "img" not in parsed.tags and "script" not in parsed.tags
    assert not {a for a in parsed.attributes if a.startswith("on")}
    assert parsed.attributes <= {
        "lang", "charset", "http-equiv", "content", "name", "class", "style", "id", "role",
        "aria-label", "viewbox", "width", "height", "preserveaspectratio", "x", "y", "x1", "y1",
        "x2", "y2", "rx", "fill", "stroke", "stroke-width", "stroke-dasharray", "font-size",
        "font-weight", "text-anchor", "title", "colspan",
    }  # fmt: skip


def test_every_template_ships_with_the_package() -> None:
    """``pyproject.toml`` packages ``engine/templates/*.j2``: a template elsewhere or named
    otherwise would be missing from a wheel, and the page would fail to render there."""
    templates = Path(report_html.__file__).parent / "templates"
    files = [p for p in templates.rglob("*") if p.is_file()]
    assert files and all(p.parent == templates and p.suffix == ".j2" for p in files)
    assert 'teardown = ["py.typed", "sandbox/scenarios/*.toml", "engine/templates/*.j2"]' in (
        (ROOT / "pyproject.toml").read_text()
    )


def test_write_report_writes_three_owner_only_files(tmp_path: Path) -> None:
    report, timeline = _report(tmp_path / "rig")
    paths = write_report(report, tmp_path / "out", timeline)
    assert [p.name for p in paths] == ["report.json", "report.md", "report.html"]
    for p in paths:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert paths[2].read_text(encoding="utf-8") == render_html(report, timeline)


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.skip("chromium is not installed (scripts/test installs it when run as root)")
    return found


def _chromium_args(chromium: str, profile: Path) -> list[str]:
    return [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
    ]


def _png_pixels(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and the (filtered) scanlines of an 8-bit RGB/RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    assert len(raw) == height * (1 + width * channels)
    return width, height, raw


def test_chromium_renders_the_page(tmp_path: Path) -> None:
    chromium = _chromium()
    report, timeline = _report(tmp_path / "rig")
    html_path = write_report(report, tmp_path / "out", timeline)[2]
    url = html_path.resolve().as_uri()
    args = _chromium_args(chromium, tmp_path / "profile")

    dom = subprocess.run(
        [*args, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert 'id="timeline"' in dom and 'id="money"' in dom and 'id="backups"' in dom
    assert "<script" not in dom

    png = tmp_path / "report.png"
    size = f"--window-size={WINDOW[0]},{WINDOW[1]}"
    subprocess.run(
        [*args, f"--screenshot={png}", size, url], capture_output=True, timeout=120, check=True
    )
    data = png.read_bytes()
    assert len(data) > 10_000
    width, height, raw = _png_pixels(data)
    assert (width, height) == WINDOW
    assert len(set(raw[:: len(raw) // 5000])) > 8  # not a blank page
