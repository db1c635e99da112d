"""The emulator's own request and response: plain data, no HTTP library.

The in-process transport and the ASGI server both translate to and from these, so every
request takes the same path through :meth:`ctsync.emulator.Emulator.handle`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["JSON_TYPE", "EmuRequest", "EmuResponse", "json_response", "no_content"]


@dataclass(frozen=True)
class EmuRequest:
    """One HTTP request as the emulator sees it. Header names are lower case."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def origin(self) -> str:
        """``scheme://host[:port]`` of the request, used to build absolute links."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def raw_path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> dict[str, str]:
        """Query parameters; later duplicates win, as OData ignores repeats anyway."""
        return dict(parse_qsl(urlsplit(self.url).query, keep_blank_values=True))

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


@dataclass
class EmuResponse:
    """One HTTP response. ``delay`` is injected latency the transport applies before delivery;
    ``drop`` (an injected fault) tells the transport to lose the connection instead of
    delivering the response whole."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0
    drop: bool = False

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


#: The content type of Graph's JSON answers.
JSON_TYPE = "application/json; odata.metadata=minimal; odata.streaming=true"


def json_response(
    status: int, payload: Any, headers: Mapping[str, str] | None = None
) -> EmuResponse:
    body = json.dumps(payload, separators=(",", ":")).encode()
    out = {"content-type": JSON_TYPE}
    out.update(headers or {})
    return EmuResponse(status=status, headers=out, body=body)


def no_content(headers: Mapping[str, str] | None = None) -> EmuResponse:
    return EmuResponse(status=204, headers=dict(headers or {}))
