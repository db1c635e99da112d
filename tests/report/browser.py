"""Headless Chromium from the command line (no Python dependency) and a small PNG reader.

``chromium --headless`` takes a screenshot, dumps the DOM after the page's scripts ran, and —
with ``--enable-logging=stderr`` — prints the page's console messages, blocked requests and
Content-Security-Policy violations on stderr, where :func:`page_errors` looks for them.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

__all__ = [
    "chromium",
    "distinct_colours",
    "dump_dom",
    "external_references",
    "page_errors",
    "screenshot",
]

#: A cold start of Chromium on a busy machine, and the layout of a 9,900-link page.
TIMEOUT = 90
SIZE = "1400,1000"

#: A src/href (or SVG's xlink:href, a form's action…) that is not a fragment or a data: URL,
#: and CSS url()/@import that leave the page.
_ATTRIBUTE = re.compile(
    r"""\b(?:src|href|xlink:href|action|formaction|poster|srcset|background)\s*=\s*["']?"""
    r"""(?!["'#]|data:)[^"'\s>]*""",
    re.IGNORECASE,
)
_CSS_URL = re.compile(r"""url\(\s*["']?(?!#|data:)[^)]*\)|@import""", re.IGNORECASE)
_FAR = re.compile(r"""(?:src|href|url\()\s*=?\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(page: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    binary = chromium()
    assert binary is not None
    command = [
        binary,
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--window-size={SIZE}",
        *flags,
        page.resolve().as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)


def screenshot(page: Path, png: Path) -> Path:
    done = _run(page, f"--screenshot={png}")
    assert png.exists(), done.stderr[-2000:]
    return png


def dump_dom(page: Path) -> tuple[str, str]:
    """The DOM after the page's scripts ran, and Chromium's log (console, network, CSP)."""
    done = _run(page, "--dump-dom", "--enable-logging=stderr", "--v=0")
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr


def page_errors(log: str) -> list[str]:
    """Lines of Chromium's log that say the page failed: a console error, a request (blocked
    or not: the page must make none), a Content-Security-Policy violation."""
    bad = re.compile(
        r"CONSOLE.*(?:error|Uncaught)|Content Security Policy|Refused to|net::ERR|"
        r"Failed to load|Uncaught",
        re.IGNORECASE,
    )
    return [line for line in log.splitlines() if bad.search(line)]


def external_references(page: str) -> list[str]:
    """Everything in an HTML page that would make the browser fetch something."""
    found = [m.group(0) for m in _ATTRIBUTE.finditer(page)]
    found += [m.group(0) for m in _CSS_URL.finditer(page)]
    found += [m.group(0) for m in _FAR.finditer(page)]
    return found


def distinct_colours(png: bytes, *, enough: int = 256) -> int:
    """How many distinct pixel colours an 8-bit RGB(A) PNG holds, counted until ``enough``
    (a page that is not blank gets there within its first rows)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, data = 8, bytearray()
    width = height = channels = 0
    while position < len(png):
        (length,) = struct.unpack(">I", png[position : position + 4])
        kind = png[position + 4 : position + 8]
        body = png[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8, depth
            assert colour in (2, 6), colour
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            data += body
        position += 12 + length
    raw = zlib.decompress(bytes(data))
    stride = width * channels
    previous = bytearray(stride)
    seen: set[bytes] = set()
    for row in range(height):
        start = row * (stride + 1)
        line = bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(raw[start], line, previous, channels)
        for x in range(0, stride, channels * 3):
            seen.add(bytes(line[x : x + 3]))
        if len(seen) >= enough:
            break
        previous = line
    return len(seen)


def _unfilter(kind: int, line: bytearray, previous: bytearray, bpp: int) -> None:
    """PNG's per-row filters (None, Sub, Up, Average, Paeth), undone in place."""
    if kind == 1:
        for i in range(bpp, len(line)):
            line[i] = (line[i] + line[i - bpp]) & 0xFF
    elif kind == 2:
        line[:] = bytes((a + b) & 0xFF for a, b in zip(line, previous, strict=True))
    elif kind == 3:
        for i in range(len(line)):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + (left + previous[i]) // 2) & 0xFF
    elif kind == 4:
        for i in range(len(line)):
            a = line[i - bpp] if i >= bpp else 0
            b = previous[i]
            c = previous[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            near = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            line[i] = (line[i] + near) & 0xFF
