"""Routes: Graph paths matched case-insensitively, as Microsoft Graph does.

A pattern is a path under the version root, with ``{name}`` capturing one segment, for example
``/policies/crossTenantAccessPolicy/partners/{tenantId}`` or
``/tenantRelationships/findTenantInformationByTenantId(tenantId='{tenantId}')``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import unquote

from ctsync.emulator.core.http import EmuResponse

if TYPE_CHECKING:
    from ctsync.emulator.core.context import RequestContext
    from ctsync.emulator.core.errors import GraphFault

__all__ = ["Handler", "Route", "RouteMatch", "Router", "normalize_path"]

Handler = Callable[["RequestContext"], EmuResponse]
#: The answer for a path that exists, but not for this method: ``(method, path) -> fault``.
MismatchFault = Callable[[str, str], "GraphFault"]

_PARAM = re.compile(r"\{(\w+)\}")


def normalize_path(path: str) -> str:
    """Forgiving URL normalisation: decode, collapse ``//``, drop a trailing ``/``."""
    path = unquote(path)
    path = re.sub(r"/{2,}", "/", path)
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/")
    return path or "/"


def _compile(pattern: str) -> re.Pattern[str]:
    out = []
    last = 0
    for m in _PARAM.finditer(pattern):
        out.append(re.escape(pattern[last : m.start()]))
        out.append(f"(?P<{m.group(1)}>[^/()']+)")
        last = m.end()
    out.append(re.escape(pattern[last:]))
    return re.compile("^" + "".join(out) + "$", re.IGNORECASE)


@dataclass(frozen=True)
class Route:
    """One Graph operation.

    ``permissions``: application roles any one of which allows the call (empty: any valid
    token). ``kind`` picks the throttling family (``identity``, ``reports``, ``on_demand``).
    ``cost`` is the base charge in resource units (graph-limits §1.2).
    """

    method: str
    pattern: str
    handler: Handler
    permissions: tuple[str, ...] = ()
    kind: str = "identity"
    cost: int = 1
    #: Also served under ``/beta`` (the few beta operations the emulator has).
    beta: bool = False
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", _compile(self.pattern))

    @property
    def is_write(self) -> bool:
        return self.method in {"POST", "PATCH", "PUT", "DELETE"}


@dataclass(frozen=True)
class RouteMatch:
    route: Route | None
    params: dict[str, str]
    #: True when the path exists but not for this method (answer 405, not 501).
    method_mismatch: bool = False


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []
        #: Paths under a prefix whose service answers a wrong method its own way (the
        #: synchronization service does not answer 405); checked in order.
        self.mismatch_answers: list[tuple[re.Pattern[str], MismatchFault]] = []

    def route(
        self,
        method: str,
        pattern: str,
        *,
        permissions: tuple[str, ...] = (),
        kind: str = "identity",
        cost: int = 1,
        beta: bool = False,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append(
                Route(
                    method.upper(), pattern, handler, permissions, kind=kind, cost=cost, beta=beta
                )
            )
            return handler

        return register

    def include(self, other: Router) -> None:
        self.routes.extend(other.routes)
        self.mismatch_answers.extend(other.mismatch_answers)

    def on_method_mismatch(self, prefix: str, answer: MismatchFault) -> None:
        """Answer a path under ``prefix`` (a pattern like those of :meth:`route`, matching the
        path's beginning) that exists for other methods with ``answer`` instead of ``405``."""
        compiled = _compile(prefix)
        self.mismatch_answers.append(
            (re.compile(compiled.pattern.rstrip("$") + "(/|$)", re.I), answer)
        )

    def mismatch_fault(self, method: str, path: str) -> GraphFault | None:
        """The service's own answer for a method a path has no route for, if it has one."""
        for pattern, answer in self.mismatch_answers:
            if pattern.match(path):
                return answer(method, path)
        return None

    def match(self, method: str, path: str) -> RouteMatch:
        mismatch = False
        for route in self.routes:
            m = route.regex.match(path)
            if m is None:
                continue
            if route.method == method.upper():
                return RouteMatch(route, dict(m.groupdict()))
            mismatch = True
        return RouteMatch(None, {}, method_mismatch=mismatch)
