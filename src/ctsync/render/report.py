"""The report of every link as one self-contained HTML page, as Markdown, or as JSON.

The page asks nothing of the network: its style, pictures (inline SVG) and script are in the
file, and a Content-Security-Policy tells the browser to refuse any request, so it reads the
same opened from disk or attached to a ticket. Every piece of data — names, tags, messages —
comes from tenants and files and is escaped; a tenant called ``<script>`` shows as that text.

The topology stays readable from one pair to a 100-tenant mesh: a few tenants sit on a circle
(or around their hub) with an arrow per link; a large fleet is a chord diagram, its tenants
grouped by hub, healthy links drawn thin under the ones that need attention, and a search box
and filters (health, tenant) that hide the rest. Every tenant is one ``data-tenant`` element and
every link one ``data-link`` element, whatever is shown.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

from ctsync._version import __version__
from ctsync.engine.model import Step
from ctsync.ops.report import ACTIVITY, HEALTHS, LinkReport, OrganizationReport, Report
from ctsync.render.text import printable

__all__ = [
    "COLOURS",
    "CSP",
    "MARKDOWN_LIMIT",
    "report_html",
    "report_json",
    "report_markdown",
]

CSP: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
)
#: GitHub refuses a comment longer than this many characters.
MARKDOWN_LIMIT: Final = 65_536
#: Links whose full card the page holds (worst first); the table lists every link.
MAX_CARDS: Final = 300
#: Up to this many tenants and links, a circle (or hub) with labelled arrows; beyond, chords.
SMALL_TENANTS: Final = 16
SMALL_LINKS: Final = 64
#: A large fleet with more links than this draws its healthy ones as a faint haze…
CROWDED_LINKS: Final = 400
#: … and with more unwell links than this, those thin as well.
DENSE_UNWELL: Final = 300

COLOURS: Final = {
    "quarantined": "#9333ea",
    "failing": "#dc2626",
    "not-set-up": "#64748b",
    "drift": "#ea580c",
    "paused": "#0891b2",
    "warning": "#ca8a04",
    "healthy": "#16a34a",
}
_MEANING: Final = {
    "quarantined": "the job is quarantined",
    "failing": "a cycle failed, or preflight found an error",
    "not-set-up": "no sync job yet",
    "drift": "the tenants differ from the config",
    "paused": "the job does not run",
    "warning": "preflight warnings, escrows or failed entries",
    "healthy": "nothing to report",
}
#: A dash pattern per health, so the picture does not rest on colour alone.
_DASH: Final = {"not-set-up": "2 5", "drift": "9 5", "paused": "1 4"}
_ACTIVITY_COLOURS: Final = {
    "created": "#16a34a",
    "updated": "#2563eb",
    "skipped": "#94a3b8",
    "failed": "#dc2626",
    "other": "#7c3aed",
}
_SIGNS: Final = {"create": "+", "update": "~", "delete": "-", "action": "!", "wait": "…"}
_RANK: Final[dict[str, int]] = {health: i for i, health in enumerate(HEALTHS)}


def _e(value: Any) -> str:
    """Data as HTML text or attribute value: escaped, controls and bidi marks spelled out."""
    return html.escape(printable(str(value)), quote=True)


def _label(health: str) -> str:
    return health.replace("-", " ")


def _value(value: Any) -> str:
    if value is None:
        return "(none)"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _seconds(value: Any) -> str:
    if value is None:
        return "—"
    seconds = float(value)
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _cycle_words(link: LinkReport) -> str:
    """The last cycle in one line: state, duration, counts."""
    last = link.status.last_cycle if link.status is not None else None
    if not last:
        return "no cycle yet"
    error = f", error {last['error']}" if last.get("error") else ""
    return (
        f"{last.get('state')} · {_seconds(last.get('seconds'))} · "
        f"{last.get('exported') or 0} exported · {last.get('escrowed') or 0} escrowed{error}"
    )


def _asks_words(asks: dict[str, Any]) -> str:
    scope = "; ".join(asks.get("scope") or ()) or "nobody assigned"
    return (
        f"{asks.get('template') or 'no template'} · {asks.get('user_type')} · {scope} · "
        f"{', '.join(asks.get('actions') or ()) or 'no actions'}"
    )


def _ordered(report: Report) -> list[tuple[int, LinkReport]]:
    """Links worst first, then in config order, each with its index (its element ids)."""
    return sorted(enumerate(report.links), key=lambda il: (_RANK[il[1].health], il[0]))


# -- topology --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Place:
    x: float
    y: float
    #: The direction a label goes out from the centre (radians); None: the centre itself.
    angle: float | None


def _neighbourly(names: Sequence[str], pairs: Sequence[tuple[str, str]]) -> list[str]:
    """Tenants in breadth-first order from the busiest: a connected group stays together on
    the circle, and tenants that link to each other sit near each other."""
    near: dict[str, set[str]] = {n: set() for n in names}
    for s, t in pairs:
        near[s].add(t)
        near[t].add(s)
    order: list[str] = []
    seen: set[str] = set()
    for first in sorted(names, key=lambda n: (-len(near[n]), n)):
        queue = deque([first]) if first not in seen else deque()
        seen.add(first)
        while queue:
            here = queue.popleft()
            order.append(here)
            for other in sorted(near[here] - seen):
                seen.add(other)
                queue.append(other)
    return order


def _hubs(names: Sequence[str], pairs: Sequence[tuple[str, str]]) -> list[str]:
    """The few tenants most links go through, when every link touches one of them."""
    if len(names) < 6:
        return []  # a handful of tenants reads best on a circle
    degree = Counter(n for pair in pairs for n in pair)
    top = max(degree.values(), default=0)
    hubs = [n for n in names if degree[n] >= 3 and degree[n] >= top / 2]
    spokes = len(names) - len(hubs)
    if not 1 <= len(hubs) <= 3 or spokes < 2 * len(hubs):
        return []
    chosen = set(hubs)
    return hubs if all(s in chosen or t in chosen for s, t in pairs) else []


def _circle(names: Sequence[str], radius: float, start: float) -> dict[str, _Place]:
    count = max(len(names), 1)
    out = {}
    for i, name in enumerate(names):
        angle = start + 2 * math.pi * i / count
        out[name] = _Place(radius * math.cos(angle), radius * math.sin(angle), angle)
    return out


def _layout(
    names: Sequence[str], pairs: Sequence[tuple[str, str]], radius: float
) -> tuple[dict[str, _Place], set[str]]:
    """Where each tenant goes, and which are hubs: hubs in the middle with their spokes around
    them (grouped by hub), else a circle grouped by connected part."""
    hubs = _hubs(names, pairs)
    if hubs:
        links_to: dict[str, Counter[str]] = defaultdict(Counter)
        for s, t in pairs:
            links_to[s][t] += 1
            links_to[t][s] += 1
        order = {h: i for i, h in enumerate(hubs)}
        spokes = [n for n in names if n not in order]

        def primary(n: str) -> int:
            mine = [(-count, order[h]) for h, count in links_to[n].items() if h in order]
            return min(mine)[1] if mine else len(hubs)

        spokes.sort(key=lambda n: (primary(n), n))
        places = _circle(spokes, radius, -math.pi / 2)
        if len(hubs) == 1:
            places[hubs[0]] = _Place(0.0, 0.0, None)
            return places, set(hubs)
        for i, hub in enumerate(hubs):
            # Each hub faces the arc of its own spokes, so its links do not cross the others'.
            mine = [places[n].angle or 0.0 for n in spokes if primary(n) == i]
            angle = (
                math.atan2(sum(map(math.sin, mine)), sum(map(math.cos, mine)))
                if mine
                else -math.pi / 2 + 2 * math.pi * i / len(hubs)
            )
            r = radius * 0.3
            places[hub] = _Place(r * math.cos(angle), r * math.sin(angle), angle)
        return places, set(hubs)
    ordered = _neighbourly(names, pairs)
    return _circle(ordered, radius, math.pi if len(names) == 2 else -math.pi / 2), set()


def _curve(
    a: _Place, b: _Place, *, cut_a: float, cut_b: float, bend: float, pull: float
) -> tuple[str, tuple[float, float]]:
    """A quadratic path from ``a`` to ``b`` stopping short of both nodes, and its midpoint.

    ``bend`` moves the control point sideways (to the right of the direction of travel, so the
    two directions of a pair part); ``pull`` draws it towards the centre (chords)."""
    dx, dy = b.x - a.x, b.y - a.y
    dist = math.hypot(dx, dy) or 1.0
    mx, my = (a.x + b.x) / 2, (a.y + b.y) / 2
    cx, cy = mx * (1 - pull) - dy / dist * bend * dist, my * (1 - pull) + dx / dist * bend * dist

    def cut(px: float, py: float, by: float) -> tuple[float, float]:
        ux, uy = cx - px, cy - py
        length = math.hypot(ux, uy) or 1.0
        by = min(by, length * 0.45)
        return px + ux / length * by, py + uy / length * by

    x0, y0 = cut(a.x, a.y, cut_a)
    x2, y2 = cut(b.x, b.y, cut_b)
    path = f"M{x0:.1f},{y0:.1f}Q{cx:.1f},{cy:.1f} {x2:.1f},{y2:.1f}"
    return path, (0.25 * x0 + 0.5 * cx + 0.25 * x2, 0.25 * y0 + 0.5 * cy + 0.25 * y2)


def _worst(healths: Iterable[str]) -> str:
    return min(healths, key=lambda health: _RANK[health], default="healthy")


def _topology(report: Report) -> str:
    names = [t.name for t in report.tenants]
    pairs = [(link.source, link.target) for link in report.links]
    small = len(names) <= SMALL_TENANTS and len(pairs) <= SMALL_LINKS
    radius = 120.0 + 45.0 * len(names) if small else max(300.0, 4.4 * len(names))
    radius = min(radius, 290.0) if small else radius
    places, hubs = _layout(names, pairs, radius)
    node_r = 30.0 if small else 5.0
    per_tenant: dict[str, list[str]] = defaultdict(list)
    for link in report.links:
        per_tenant[link.source].append(link.health)
        per_tenant[link.target].append(link.health)
    managed = {t.name: t.managed for t in report.tenants}
    longest = max((len(n) for n in names), default=4)
    # Room for the names beside the nodes (about 9.5 px a character at 16 px, 6.2 at 10 px).
    pad_x = (40 + 9.5 * min(longest, 40) if small else 14 + 6.2 * min(longest, 40)) + node_r
    pad_y = (60.0 if small else 14 + 6.2 * min(longest, 40)) + node_r
    xs = [p.x for p in places.values()] or [0.0]
    ys = [p.y for p in places.values()] or [0.0]
    left, top = min(xs) - pad_x, min(ys) - pad_y
    width, height = max(xs) - min(xs) + 2 * pad_x, max(ys) - min(ys) + 2 * pad_y
    unwell = sum(1 for link in report.links if link.health != "healthy")
    # Many unwell links are drawn thin too, or they would be the hairball.
    dense = " dense" if not small and unwell > DENSE_UNWELL else ""
    dense += " crowded" if not small and len(pairs) > CROWDED_LINKS else ""
    out = [
        f'<svg id="topology" class="topo {"small" if small else "large"}{dense}" '
        f'viewBox="{left:.0f} {top:.0f} {width:.0f} {height:.0f}" role="img" '
        f'aria-label="Tenants and links, coloured by health" '
        f'style="max-width:{max(width, 480):.0f}px">',
        "<defs>",
    ]
    for health, colour in COLOURS.items():
        out.append(
            f'<marker id="ah-{health}" viewBox="0 0 10 10" refX="8.5" refY="5" '
            f'markerWidth="{5 if small else 7}" markerHeight="{5 if small else 7}" '
            f'orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="{colour}"/></marker>'
        )
    out.append("</defs>")
    out.append('<g class="links">')
    labels: list[str] = []
    linked = set(pairs)
    both_ways = {(s, t) for s, t in pairs if (t, s) in linked}
    # Healthy links first: the ones that need attention are drawn on top of them.
    for index, link in sorted(enumerate(report.links), key=lambda il: -_RANK[il[1].health]):
        a, b = places[link.source], places[link.target]
        if small or link.source in hubs or link.target in hubs:
            cut_b = (node_r + 4) if small else (14.0 if link.target in hubs else 7.0)
            cut_a = (node_r + 2) if small else (14.0 if link.source in hubs else 6.0)
            bend = 0.2 if (link.source, link.target) in both_ways else 0.06
            path, mid = _curve(a, b, cut_a=cut_a, cut_b=cut_b, bend=bend, pull=0.0)
        else:
            path, mid = _curve(a, b, cut_a=node_r + 2, cut_b=node_r + 3, bend=0.03, pull=0.75)
        why = f": {link.reasons[0]}" if link.reasons else ""
        out.append(
            f'<path data-link="{_e(link.key)}" data-source="{_e(link.source)}" '
            f'data-target="{_e(link.target)}" data-i="{index}" class="k {link.health}" d="{path}">'
            f"<title>{_e(link.source)} → {_e(link.target)}: {_label(link.health)}{_e(why)}"
            "</title></path>"
        )
        if small and len(pairs) <= 24:
            labels.append(
                f'<g class="tag" data-for="{_e(link.key)}" transform="translate({mid[0]:.1f},'
                f'{mid[1]:.1f})"><rect x="-{4 + 3.6 * len(_label(link.health)):.1f}" y="-10" '
                f'width="{8 + 7.2 * len(_label(link.health)):.1f}" height="20" rx="10" '
                f'class="{link.health}"/><text y="4">{_label(link.health)}</text></g>'
            )
    out.append("</g>")
    out.append('<g class="tags">' + "".join(labels) + "</g>")
    out.append('<g class="nodes">')
    out.extend(
        _node(
            name,
            places[name],
            _worst(per_tenant[name]),
            small=small,
            hub=name in hubs,
            managed=managed.get(name, True),
            links=len(per_tenant[name]),
        )
        for name in names
    )
    out.append("</g></svg>")
    return "\n".join(out)


def _node(
    name: str, place: _Place, health: str, *, small: bool, hub: bool, managed: bool, links: int
) -> str:
    klass = f"n {health}{' hub' if hub else ''}{'' if managed else ' ro'}"
    title = f"{name}: {links} link(s), worst {_label(health)}" + ("" if managed else ", read-only")
    head = (
        f'<g data-tenant="{_e(name)}" class="{klass}" tabindex="0" '
        f'transform="translate({place.x:.1f},{place.y:.1f})"><title>{_e(title)}</title>'
    )
    if small:
        angle = place.angle if place.angle is not None else math.pi / 2
        ux, uy = math.cos(angle), math.sin(angle)
        anchor = "middle" if abs(ux) < 0.35 else ("start" if ux > 0 else "end")
        # Two lines (name, link count) just outside the circle, on the side away from the middle.
        lx = ux * 42
        top = uy * 42 + (-30 if uy < -0.35 else (-8 if uy <= 0.35 else 8))
        initials = "".join(ch for ch in name if ch.isalnum())[:2].upper() or "?"
        return (
            f'{head}<circle r="30"/><text class="ini" y="6">{_e(initials)}</text>'
            f'<text class="name" x="{lx:.1f}" y="{top + 14:.1f}" text-anchor="{anchor}">'
            f"{_e(name)}</text>"
            f'<text class="sub" x="{lx:.1f}" y="{top + 30:.1f}" text-anchor="{anchor}">'
            f"{links} link{'s' if links != 1 else ''}</text></g>"
        )
    radius = 12.0 if hub else 5.0
    if hub or place.angle is None:  # a hub's name reads level, beside it
        return (
            f'{head}<circle r="{radius}"/><text class="name" x="{radius + 6:.0f}" y="5">'
            f"{_e(name)}</text></g>"
        )
    degrees = math.degrees(place.angle) % 360
    flip = 90 < degrees < 270
    rotate = degrees + 180 if flip else degrees
    dx = -(radius + 5) if flip else radius + 5
    return (
        f'{head}<circle r="{radius}"/><text class="name" x="{dx:.0f}" y="3.5" '
        f'transform="rotate({rotate:.1f})" text-anchor="{"end" if flip else "start"}">'
        f"{_e(name)}</text></g>"
    )


def _legend(report: Report) -> str:
    counts = report.health_counts()
    items = []
    for health in HEALTHS:
        dash = _DASH.get(health, "")
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        items.append(
            f'<label class="lg" title="{_e(_MEANING[health])}"><input type="checkbox" '
            f'data-health="{health}" checked><svg width="30" height="12" aria-hidden="true">'
            f'<line x1="1" y1="6" x2="29" y2="6" stroke="{COLOURS[health]}" stroke-width="3"'
            f"{dash_attr}/></svg><b>{_label(health)}</b> <span class=c>{counts[health]}</span>"
            f"<small>{_e(_MEANING[health])}</small></label>"
        )
    return '<div class="legend">' + "".join(items) + "</div>"


def _attention(report: Report, shown: int = 8) -> str:
    """The links that need attention most, each with why: the first place to look."""
    worst = [(i, link) for i, link in _ordered(report) if link.health != "healthy"]
    if not worst:
        return '<h3>Needs attention</h3><p class="muted">Nothing: every link is healthy.</p>'
    items = "".join(
        f'<li><a href="#l{i}"><span class="b {link.health}">{_label(link.health)}</span> '
        f"{_e(link.source)} → {_e(link.target)}</a>"
        f"<small>{_e(link.reasons[0]) if link.reasons else ''}</small></li>"
        for i, link in worst[:shown]
    )
    more = len(worst) - shown
    tail = f'<p class="muted">… and {more} more in the table below.</p>' if more > 0 else ""
    return f'<h3>Needs attention</h3><ol class="attention">{items}</ol>{tail}'


def _controls(report: Report) -> str:
    options = "".join(f'<option value="{_e(t.name)}">{_e(t.name)}</option>' for t in report.tenants)
    return (
        '<div class="controls"><input id="q" type="search" placeholder="Search tenants or links…" '
        'aria-label="Search tenants or links"><select id="tenant" aria-label="Only this tenant\'s '
        f'links"><option value="">All tenants</option>{options}</select>'
        '<button id="reset" type="button">Show all</button>'
        '<span id="shown" class="muted"></span></div>'
    )


# -- charts ----------------------------------------------------------------------------------


def _nice(top: int) -> int:
    """The smallest 1, 2 or 5 × 10^k at or above ``top`` (and at least 1)."""
    if top <= 1:
        return 1
    magnitude: int = 10 ** math.floor(math.log10(top))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= top)


def _bars(report: Report) -> str:
    days = report.days
    width, height, left, bottom, top_pad = 760.0, 250.0, 44.0, 34.0, 22.0
    plot_w, plot_h = width - left - 10, height - bottom - top_pad
    totals = [sum(d.counts.values()) for d in days]
    scale = _nice(max(totals, default=0))
    out = [
        f'<svg class="bars" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="Provisioning log entries per day">'
    ]
    for tick in (0, scale / 2, scale):
        y = top_pad + plot_h - plot_h * tick / scale
        shown = f"{tick:g}"
        out.append(
            f'<line class="grid" x1="{left}" x2="{width - 10:.0f}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="ax" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{shown}</text>'
        )
    count = max(len(days), 1)
    slot = plot_w / count
    bar = min(46.0, slot * 0.7)
    every = max(1, math.ceil(count / 14))
    for i, day in enumerate(days):
        x = left + slot * i + (slot - bar) / 2
        y = top_pad + plot_h
        for kind in ACTIVITY:
            n = day.counts.get(kind, 0)
            if not n:
                continue
            h = plot_h * n / scale
            y -= h
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{_ACTIVITY_COLOURS[kind]}"><title>{_e(day.day)}: {n} {kind}</title></rect>'
            )
        if totals[i]:
            out.append(
                f'<text class="tot" x="{x + bar / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle">'
                f"{totals[i]}</text>"
            )
        if i % every == 0:
            out.append(
                f'<text class="ax" x="{x + bar / 2:.1f}" y="{height - 12:.0f}" '
                f'text-anchor="middle">{_e(day.day[5:])}</text>'
            )
    out.append("</svg>")
    sums = {kind: sum(d.counts.get(kind, 0) for d in days) for kind in ACTIVITY}
    keys = "".join(
        f'<span><i style="background:{_ACTIVITY_COLOURS[k]}"></i>{k} <b>{sums[k]}</b></span>'
        for k in ACTIVITY
        if sums[k] or k != "other"
    )
    return "".join(out) + f'<div class="keys">{keys}</div>'


# -- the page --------------------------------------------------------------------------------


def _tiles(report: Report) -> str:
    counts = report.health_counts()
    drift = sum(len(link.steps) for link in report.links) + len(report.tenant_steps)
    pf = report.finding_counts()
    activity = {k: sum(d.counts.get(k, 0) for d in report.days) for k in ACTIVITY}
    tiles = [
        ("links", str(len(report.links)), f"between {len(report.tenants)} tenants"),
        ("healthy", str(counts["healthy"]), f"of {len(report.links)} links"),
        (
            "need attention",
            str(len(report.links) - counts["healthy"]),
            ", ".join(f"{n} {_label(h)}" for h, n in counts.items() if n and h != "healthy")
            or "none",
        ),
        ("planned changes", str(drift), "drift that apply would repair"),
        (
            "preflight",
            f"{pf.get('error', 0)} / {pf.get('warning', 0)}",
            "not run" if "preflight" in report.unavailable else "errors / warnings",
        ),
        (
            "log entries",
            str(report.log_entries),
            f"{activity['created']} created, {activity['failed']} failed",
        ),
        (
            "audit writes",
            str(len(report.audit_writes)),
            "in the window" if report.audit_present else "no trail yet",
        ),
    ]
    return (
        '<div class="tiles">'
        + "".join(
            f'<div class="tile"><span>{_e(k)}</span><b>{_e(v)}</b><small>{_e(s)}</small></div>'
            for k, v, s in tiles
        )
        + "</div>"
    )


def _row(index: int, link: LinkReport, *, card: bool) -> str:
    status = link.status
    job = "—"
    if status is not None:
        job = (
            "not set up"
            if not status.set_up
            else f"{status.schedule or '—'} · {status.code or '—'}"
        )
    errors = sum(1 for f in link.findings if f.severity == "error")
    warnings = sum(1 for f in link.findings if f.severity == "warning")
    name = f"{_e(link.source)} → {_e(link.target)}"
    if card:
        name = f'<a href="#l{index}">{name}</a>'
    act = link.activity
    return (
        f'<tr data-row="{_e(link.key)}"><td>{name}</td><td><span class="b {link.health}">'
        f"{_label(link.health)}</span></td><td>{_e(_asks_words(link.asks))}</td><td>{_e(job)}</td>"
        f"<td>{_e(_cycle_words(link))}</td><td>{act['created']}/{act['updated']}/{act['skipped']}/"
        f"{act['failed']}</td><td>{len(link.steps)}</td><td>{errors}/{warnings}</td></tr>"
    )


def _links_table(report: Report, cards: set[int]) -> str:
    rows = "\n".join(_row(i, link, card=i in cards) for i, link in _ordered(report))
    return (
        '<div class="scroll"><table class="links"><thead><tr><th>link</th><th>health</th>'
        "<th>the config asks</th><th>job</th><th>last cycle</th>"
        '<th title="created/updated/skipped/failed in the window">logs c/u/s/f</th>'
        '<th>drift</th><th title="preflight errors/warnings">preflight e/w</th></tr></thead>'
        f"<tbody>\n{rows}\n</tbody></table></div>"
    )


def _dl(pairs: Iterable[tuple[str, Any]]) -> str:
    return (
        "<dl>"
        + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in pairs if v not in (None, "", []))
        + "</dl>"
    )


def _steps_html(steps: Sequence[Step]) -> str:
    items = []
    for step in steps:
        changes = "".join(
            f"<li><code>{_e(c.field)}</code>: {_e(_value(c.old))} → {_e(_value(c.new))}</li>"
            for c in step.changes
        )
        mark = ' <em class="destructive">destructive</em>' if step.destructive else ""
        items.append(
            f'<li><code class="sign">{_SIGNS.get(step.action, "?")}</code> in <b>{_e(step.tenant)}'
            f"</b>: {_e(step.summary)}{mark}" + (f"<ul>{changes}</ul>" if changes else "") + "</li>"
        )
    return '<ul class="steps">' + "".join(items) + "</ul>"


def _organization_html(org: OrganizationReport) -> str:
    """The multitenant organization: its tenants' roles and states, what the plan would do."""
    rows = "".join(
        f"<tr><td>{_e(t['tenant'])}</td><td><code>{_e(t['tenant_id'])}</code></td>"
        f"<td>{_e(t['role'])}</td><td>{_e(t['state'])}</td></tr>"
        for t in org.tenants
    )
    rows += "".join(
        f"<tr><td>{_e(o['name'])} <em>(not in the config)</em></td>"
        f"<td><code>{_e(o['tenant_id'])}</code></td><td></td><td>left alone</td></tr>"
        for o in org.others
    )
    parts = [
        '<section id="organization"><h2>Multitenant organization</h2>',
        f'<p><span class="b {_e(org.health)}">{_e(_label(org.health))}</span> '
        f"<b>{_e(org.name)}</b>, owned by <b>{_e(org.owner)}</b> "
        f"(state {_e(org.state or 'unknown')})</p>",
        "<table><thead><tr><th>tenant</th><th>id</th><th>role</th><th>state</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>",
    ]
    if org.steps:
        parts += ["<h3>What apply would change</h3>", _steps_html(org.steps)]
    if org.handoff:
        parts += [
            "<h3>For the admins of read-only tenants (ctsync does not run these)</h3>",
            _steps_html(org.handoff),
        ]
    parts.append("</section>")
    return "\n".join(parts)


def _card(index: int, link: LinkReport, *, open_: bool) -> str:
    asks, status = link.asks, link.status
    parts = [
        f'<details class="card {link.health}" id="l{index}" data-card="{_e(link.key)}"'
        f'{" open" if open_ else ""}><summary><span class="b {link.health}">{_label(link.health)}'
        f"</span> <b>{_e(link.source)}</b> → <b>{_e(link.target)}</b> "
        f'<span class="muted">{_e(link.reasons[0]) if link.reasons else "nothing to report"}</span>'
        "</summary>",
        '<div class="cols"><div><h4>The config asks</h4>',
        _dl(
            [
                ("template", asks.get("template") or "—"),
                ("user type", asks.get("user_type")),
                ("scope", "; ".join(asks.get("scope") or ()) or "nobody assigned"),
                ("actions", ", ".join(asks.get("actions") or ()) or "none"),
                ("automatic redemption", "on" if asks.get("automatic_redemption") else "off"),
                ("inbound trust", ", ".join(asks.get("inbound_trust") or ()) or "none"),
                ("deletion threshold", asks.get("deletion_threshold") or "off"),
                ("job started", "yes" if asks.get("start") else "no"),
                ("groups synced", asks.get("groups") or "no"),
                ("adopts", asks.get("adopt")),
            ]
        ),
        "</div><div><h4>The tenants hold</h4>",
    ]
    if status is None:
        parts.append('<p class="muted">status could not be read</p>')
    elif not status.set_up:
        parts.append('<p class="muted">no sync job in the source yet</p>')
    else:
        parts.append(
            _dl(
                [
                    ("job", status.job_id),
                    ("schedule", status.schedule),
                    ("status", status.code),
                    ("users synchronized", status.synchronized),
                    *(
                        [("groups synchronized", status.synchronized_groups)]
                        if status.synchronized_groups is not None
                        else []
                    ),
                    ("steady state since", status.steady_state_last),
                    ("next cycle", status.next_cycle),
                ]
            )
        )
    parts.append("</div><div><h4>Last cycle</h4>")
    last = status.last_cycle if status is not None else None
    if last:
        parts.append(
            _dl(
                [
                    ("state", last.get("state")),
                    ("began", last.get("began")),
                    ("duration", _seconds(last.get("seconds"))),
                    ("imported", last.get("imported")),
                    ("exported", last.get("exported")),
                    ("escrowed", last.get("escrowed")),
                    ("error", last.get("error")),
                    ("failures in a row", status.successive_failures if status else None),
                ]
            )
        )
    else:
        parts.append('<p class="muted">no cycle yet</p>')
    act = link.activity
    parts.append(
        f'<p class="muted">in the window: {act["created"]} created, {act["updated"]} updated, '
        f"{act['skipped']} skipped, {act['failed']} failed</p></div></div>"
    )
    if status is not None and status.quarantine:
        q = status.quarantine
        parts.append(
            f'<div class="box quarantined"><b>Quarantined ({_e(q.get("reason"))})</b> since '
            f"{_e(q.get('since'))}: {_e(q.get('meaning'))}"
            + (
                f"<br>error {_e(q.get('error'))}: {_e(q.get('message') or '')}"
                if q.get("error")
                else ""
            )
            + f"<br><b>Remedy:</b> {_e(q.get('remedy'))}</div>"
        )
    if link.reasons:
        parts.append("<h4>Why " + _label(link.health) + "</h4><ul>")
        parts += [f"<li>{_e(r)}</li>" for r in link.reasons]
        parts.append("</ul>")
    if link.problems:
        parts.append("<h4>Problems ctsync will not fix by itself</h4><ul>")
        parts += [
            f'<li><span class="sev {p.severity}">{p.severity}</span> {_e(p.message)}'
            f"<br><b>fix:</b> {_e(p.remedy)}</li>"
            for p in link.problems
        ]
        parts.append("</ul>")
    if link.findings:
        parts.append(
            f'<h4>Preflight ({len(link.findings)})</h4><table class="findings"><thead><tr>'
            "<th>severity</th><th>code</th><th>tenant</th><th>about</th><th>finding</th>"
            "<th>fix</th></tr></thead><tbody>"
        )
        parts += [
            f'<tr><td><span class="sev {f.severity}">{f.severity}</span></td><td><code>'
            f"{_e(f.code)}</code></td><td>{_e(f.tenant)}</td><td>{_e(f.subject or '')}</td>"
            f"<td>{_e(f.message)}</td><td>{_e(f.fix)}</td></tr>"
            for f in link.findings
        ]
        parts.append("</tbody></table>")
    if link.steps:
        parts.append(f"<h4>Drift: {len(link.steps)} planned change(s)</h4>")
        parts.append(_steps_html(link.steps))
    parts.append("</details>")
    return "\n".join(parts)


def _reasons_table(report: Report) -> str:
    rows = report.top_reasons()
    if not rows:
        return '<p class="muted">No entry failed or was skipped in the window.</p>'
    body = "".join(
        f"<tr><td><code>{_e(r['reason'])}</code></td><td class=num>{r['count']}</td>"
        f"<td>{_e(', '.join(r['statuses']))}</td><td>{_e(r['meaning'] or '—')}</td>"
        f"<td>{_e(r['fix'] or '—')}</td></tr>"
        for r in rows
    )
    return (
        "<table><thead><tr><th>reason</th><th>entries</th><th>status</th><th>meaning</th>"
        f"<th>fix</th></tr></thead><tbody>{body}</tbody></table>"
    )


def _outcome(status: int | None, error_code: str | None) -> str:
    return str(status) if status is not None else (error_code or "no answer recorded")


def _audit_table(report: Report) -> str:
    if not report.audit_present:
        where = f" at {_e(report.audit_path)}" if report.audit_path else ""
        return f'<p class="muted">No writes yet: there is no audit trail{where}.</p>'
    if not report.audit_writes:
        return '<p class="muted">No writes in the window.</p>'
    body = "".join(
        f"<tr><td>{_e(w.time)}</td><td>{_e(w.tenant)}</td><td><code>{_e(w.method)}</code></td>"
        f"<td><code>{_e(w.path)}</code></td><td>{_e(_outcome(w.status, w.error_code))}</td>"
        f"<td>{_e(w.link or '—')}</td><td>{_e(w.step or '—')}</td></tr>"
        for w in report.audit_writes
    )
    return (
        '<div class="scroll"><table class="audit"><thead><tr><th>time</th><th>tenant</th>'
        "<th>method</th><th>path</th><th>status</th><th>link</th><th>step</th></tr></thead>"
        f"<tbody>{body}</tbody></table></div>"
    )


def report_html(report: Report) -> str:
    """The report as one HTML page that needs nothing but itself."""
    ordered = _ordered(report)
    cards = [(i, link) for i, link in ordered[:MAX_CARDS]]
    card_ids = {i for i, _ in cards}
    few = len(report.links) <= 6
    title = f"ctsync report: {report.config_path}"
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>{_e(title)}</title>",
        f"<style>{_asset('report.css')}{_health_css()}</style></head><body>",
        '<header><h1>Cross-tenant sync report</h1><p class="meta">config '
        f"<code>{_e(report.config_path)}</code> · generated {_e(report.generated)} · "
        f"logs and writes since {_e(report.since)}</p></header>",
        "<main>",
        _tiles(report),
    ]
    if report.unavailable:
        parts.append(
            '<div class="box failing"><b>Not everything could be read:</b><ul>'
            + "".join(f"<li><b>{_e(k)}</b>: {_e(v)}</li>" for k, v in report.unavailable.items())
            + "</ul></div>"
        )
    parts += [
        '<section id="map"><h2>Topology</h2>',
        _controls(report),
        '<div class="mapgrid"><div class="canvas">' + _topology(report) + "</div>",
        f"<aside>{_legend(report)}{_attention(report)}</aside></div>",
        '<p class="hint muted">An arrow goes from the source tenant (where the job runs) to the '
        "target. Click a tenant to see only its links, an arrow for its details; the boxes of "
        "the legend show or hide a health. A tenant takes the colour of its worst link; a "
        "dashed outline is a read-only tenant.</p>",
        "</section>",
        '<section id="activity"><h2>Provisioning activity</h2>',
        f'<p class="muted">{report.log_entries} log entries since {_e(report.since)}, per day.</p>',
        _bars(report),
        "<h3>Why entries failed or were skipped</h3>",
        _reasons_table(report),
        "</section>",
        '<section id="links"><h2>Links</h2>',
        _links_table(report, card_ids),
    ]
    if len(report.links) > len(cards):
        parts.append(
            f'<p class="muted">Details of the {len(cards)} links that need attention most '
            f"follow; `ctsync report --link SOURCE:TARGET` or `--format json` has the other "
            f"{len(report.links) - len(cards)}.</p>"
        )
    parts += [_card(i, link, open_=few or link.health != "healthy") for i, link in cards]
    parts.append("</section>")
    if report.organization is not None:
        parts.append(_organization_html(report.organization))
    if report.tenant_steps or report.notes:
        parts.append('<section id="tenant-wide"><h2>Tenant-wide changes</h2>')
        if report.tenant_steps:
            parts.append(_steps_html(report.tenant_steps))
        parts += [f'<p class="muted">note: {_e(n)}</p>' for n in report.notes]
        parts.append("</section>")
    parts += [
        '<section id="audit"><h2>Recent writes (audit trail)</h2>',
        _audit_table(report),
        "</section></main>",
        f"<footer>ctsync {_e(__version__)} · config hash <code>{_e(report.config_hash[:16])}"
        "</code> · this page makes no request: everything it shows is in this file</footer>",
        f"<script>{_asset('report.js')}</script></body></html>",
    ]
    return "\n".join(parts) + "\n"


# -- Markdown --------------------------------------------------------------------------------

_MD_SPECIAL: Final = str.maketrans({c: "\\" + c for c in "\\`*_[]|#~<>"})
#: Where GitHub would see an emoji code (``:link:``) or a mention (``@name``) in text.
_SHORTCODE: Final = re.compile(r"(:)(?=[\w+-]+:)|(@)(?=[\w-])")


def _md(value: Any) -> str:
    """Data as Markdown text: no markup, no HTML, no table break, no emoji code, no mention
    (a word joiner, invisible, after the colon or the at sign that would start one)."""
    text = printable(str(value)).replace("&", "&amp;").translate(_MD_SPECIAL)
    return _SHORTCODE.sub(lambda m: m.group(0) + "\u2060", text)


def _md_code(value: Any) -> str:
    """Data as a Markdown code span (no emoji code, no mention inside one)."""
    text = printable(str(value)).replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


_EMOJI_DOT: Final = {
    "quarantined": "🟣",
    "failing": "🔴",
    "not-set-up": "⚪",
    "drift": "🟠",
    "paused": "🔵",
    "warning": "🟡",
    "healthy": "🟢",
}


@dataclass
class _Section:
    head: list[str]
    rows: list[str]
    unit: str

    def text(self, keep: int) -> str:
        lines = [*self.head, *self.rows[:keep]]
        left = len(self.rows) - keep
        if left:
            lines += ["", f"_… {left} more {self.unit} not shown here (see the note at the top)._"]
        return "\n".join([*lines, "", "</details>", ""])


def _details(summary: str, *lines: str) -> list[str]:
    return ["<details>", f"<summary>{summary}</summary>", "", *lines]


def _columns(*names: str) -> tuple[str, str]:
    return "| " + " | ".join(names) + " |", "|" + "---|" * len(names)


def _md_plan(report: Report, ordered: Sequence[LinkReport]) -> _Section:
    rows = []
    for link in ordered:
        for step in link.steps:
            changes = "".join(
                f"\n  - {_md_code(c.field)}: {_md(_value(c.old))} → {_md(_value(c.new))}"
                for c in step.changes
            )
            rows.append(
                f"- {_md_code(link.key)} `{_SIGNS.get(step.action, '?')}` in "
                f"{_md_code(step.tenant)}: {_md(step.summary)}{changes}"
            )
    rows += [
        f"- tenant-wide `{_SIGNS.get(s.action, '?')}` in {_md_code(s.tenant)}: {_md(s.summary)}"
        for s in report.tenant_steps
    ]
    rows += [
        f"- problem in {_md_code(p.link)}: {_md(p.message)} — fix: {_md(p.remedy)}"
        for link in ordered
        for p in link.problems
    ]
    steps = sum(len(link.steps) for link in report.links) + len(report.tenant_steps)
    empty = () if rows else ("No changes: both tenants of every link match the config.",)
    return _Section(_details(f"<b>Plan</b>: {steps} planned change(s)", *empty), rows, "rows")


def _md_preflight(report: Report, ordered: Sequence[LinkReport]) -> _Section:
    severity = {"error": 0, "warning": 1}
    findings = sorted(
        (f for link in ordered for f in link.findings), key=lambda f: severity.get(f.severity, 2)
    )
    pf = report.finding_counts()
    head = _columns("link", "severity", "code", "tenant", "about", "finding", "fix")
    summary = (
        f"<b>Preflight</b>: {pf.get('error', 0)} error(s), {pf.get('warning', 0)} warning(s), "
        f"{pf.get('info', 0)} info"
    )
    rows = [
        f"| {_md_code(f.link)} | {f.severity} | {_md_code(f.code)} | {_md_code(f.tenant)} | "
        f"{_md(f.subject or '')} | {_md(f.message)} | {_md(f.fix)} |"
        for f in findings
    ]
    return _Section(_details(summary, *(head if rows else ("Nothing found.",))), rows, "findings")


def _md_status(report: Report, ordered: Sequence[LinkReport]) -> _Section:
    rows = []
    for link in ordered:
        why = _md("; ".join(link.reasons)) or "—"
        if link.status is not None and link.status.quarantine:
            q = link.status.quarantine
            why = (
                f"{_md(q.get('reason'))}: {_md(q.get('meaning'))} — remedy: {_md(q.get('remedy'))}"
            )
        escrowed = link.status.escrowed if link.status is not None else "—"
        rows.append(
            f"| {_md_code(link.key)} | {_EMOJI_DOT[link.health]} {_label(link.health)} | "
            f"{_md(_cycle_words(link))} | {escrowed} | {why} |"
        )
    healthy = report.health_counts()["healthy"]
    head = _columns("link", "health", "last cycle", "escrowed", "quarantine or why")
    summary = f"<b>Status</b>: {healthy} of {len(report.links)} link(s) healthy"
    return _Section(_details(summary, *head), rows, "links")


def _md_logs(report: Report) -> _Section:
    total = {k: sum(d.counts.get(k, 0) for d in report.days) for k in ACTIVITY}
    rows = [
        f"| {d.day} | {d.counts['created']} | {d.counts['updated']} | {d.counts['skipped']} | "
        f"{d.counts['failed']} |"
        for d in report.days
    ]
    reasons = [
        f"| {_md_code(r['reason'])} | {r['count']} | {_md(r['meaning'] or '—')} | "
        f"{_md(r['fix'] or '—')} |"
        for r in report.top_reasons()
    ]
    if reasons:
        rows += ["", *_columns("reason", "entries", "meaning", "fix"), *reasons]
    summary = (
        f"<b>Provisioning logs</b> since {report.since}: {report.log_entries} entries "
        f"({total['created']} created, {total['updated']} updated, {total['skipped']} skipped, "
        f"{total['failed']} failed)"
    )
    head = _columns("day", "created", "updated", "skipped", "failed")
    return _Section(_details(summary, *head), rows, "rows")


def _md_audit(report: Report) -> _Section:
    rows = [
        f"| {_md(w.time)} | {_md_code(w.tenant)} | {_md(w.method)} | {_md_code(w.path)} | "
        f"{_md(_outcome(w.status, w.error_code))} | {_md_code(w.link or '-')} | "
        f"{_md_code(w.step or '-')} |"
        for w in report.audit_writes
    ]
    summary = f"<b>Audit trail</b>: {len(report.audit_writes)} recent write(s)"
    if not report.audit_present:
        head: Sequence[str] = ("No writes yet: there is no audit trail.",)
    elif not rows:
        head = ("No writes in the window.",)
    else:
        head = _columns("time", "tenant", "method", "path", "status", "link", "step")
    return _Section(_details(summary, *head), rows, "writes")


def _md_sections(report: Report) -> list[_Section]:
    ordered = [link for _, link in _ordered(report)]
    sections = [
        _md_plan(report, ordered),
        _md_preflight(report, ordered),
        _md_status(report, ordered),
        _md_logs(report),
        _md_audit(report),
    ]
    if report.organization is not None:
        sections.insert(3, _md_organization(report.organization))
    return sections


def _md_organization(org: OrganizationReport) -> _Section:
    head, rule = _columns("tenant", "id", "role", "state")
    rows = [
        f"| {_md(t['tenant'])} | {_md_code(t['tenant_id'])} | {_md(t['role'])} | "
        f"{_md(t['state'])} |"
        for t in org.tenants
    ]
    rows += [
        f"| {_md(o['name'])} (not in the config) | {_md_code(o['tenant_id'])} | | left alone |"
        for o in org.others
    ]
    steps = [
        f"- `{_SIGNS.get(s.action, '?')}` in {_md_code(s.tenant)}: {_md(s.summary)}"
        for s in org.steps
    ]
    steps += [
        f"- for the admin of {_md_code(s.tenant)} (read-only): {_md(s.summary)}"
        for s in org.handoff
    ]
    if steps:
        rows += ["", *steps]
    summary = (
        f"<b>Multitenant organization</b> {_md(org.name)}: {_label(org.health)}, owner "
        f"{_md(org.owner)}, {len(org.tenants)} tenant(s) of the config"
    )
    return _Section(_details(summary, "", head, rule), rows, "rows")


def report_markdown(report: Report, *, limit: int = MARKDOWN_LIMIT) -> str:
    """The report for a pull-request comment: a summary, then plan, preflight, status, logs and
    the audit trail in collapsible sections; cut to ``limit`` characters with a note that says
    so (each section keeps its share, worst links first)."""
    counts = report.health_counts()
    head = [
        f"## ctsync report: {_md_code(report.config_path)}",
        "",
        f"{len(report.links)} link(s) between {len(report.tenants)} tenant(s) · generated "
        f"{report.generated} · logs since {report.since}",
        "",
        "| " + " | ".join(f"{_EMOJI_DOT[h]} {_label(h)}" for h in HEALTHS) + " |",
        "|" + "---|" * len(HEALTHS),
        "| " + " | ".join(str(counts[h]) for h in HEALTHS) + " |",
        "",
    ]
    head += [f"> **Could not read {_md(k)}:** {_md(v)}" for k, v in report.unavailable.items()]
    sections = _md_sections(report)
    note_room = 400
    fixed = len("\n".join(head)) + sum(len(s.text(0)) for s in sections) + note_room
    budget = max(0, limit - fixed)
    keep = _share(budget, [[len(r) + 1 for r in s.rows] for s in sections])
    left_out = sum(len(s.rows) - k for s, k in zip(sections, keep, strict=True))
    if left_out:
        head += [
            f"> [!NOTE]\n> Cut to fit a GitHub comment ({limit:,} characters): {left_out:,} "
            "row(s) are not shown. The HTML report (`ctsync report`) and `--format json` have "
            "everything.",
            "",
        ]
    text = "\n".join(head) + "\n" + "".join(s.text(k) for s, k in zip(sections, keep, strict=True))
    return text if len(text) <= limit else text[: limit - 40] + "\n\n_… cut here._\n"


def _share(budget: int, sizes: list[list[int]]) -> list[int]:
    """How many rows of each section fit: each section gets an equal share of ``budget``; what
    a small one does not use goes to the larger ones."""
    keep = [0] * len(sizes)
    remaining = budget
    order = sorted(range(len(sizes)), key=lambda i: sum(sizes[i]))
    for place, i in enumerate(order):
        share = remaining // (len(order) - place)
        used = 0
        for size in sizes[i]:
            if used + size > share:
                break
            used += size
            keep[i] += 1
        remaining -= used
    return keep


# -- JSON ------------------------------------------------------------------------------------


def report_json(report: Report) -> str:
    """The report's data, for dashboards."""
    return json.dumps(report.to_dict(), indent=2, default=str) + "\n"


RENDERERS: Final[dict[str, Callable[[Report], str]]] = {
    "html": report_html,
    "markdown": report_markdown,
    "json": report_json,
}


def _health_css() -> str:
    """A rule set per health: arrows, arrowheads, badges, nodes, cards."""
    rules = []
    for h, c in COLOURS.items():
        dash = f";stroke-dasharray:{_DASH[h]}" if h in _DASH else ""
        heads = [f".small .k.{h}", f".large .k.{h}.on"]
        if h != "healthy":  # a large fleet's few unwell links carry their heads
            heads.append(f".large:not(.dense) .k.{h}")
        rules += [
            f".k.{h}{{stroke:{c}{dash}}}",
            f"{','.join(heads)}{{marker-end:url(#ah-{h})}}",
            f".b.{h},.tag .{h}{{background:{c};fill:{c}}}.n.{h} circle{{stroke:{c}}}",
            f".large .n.{h} circle{{fill:{c}}}.n.{h} .ini{{fill:{c}}}",
            f".card.{h}{{border-left-color:{c}}}.box.{h}{{border-color:{c};background:{c}12}}",
        ]
    return "".join(rules)


def _asset(name: str) -> str:
    """The page's style sheet or script, kept beside this module as plain CSS and JavaScript."""
    return resources.files("ctsync.render").joinpath(name).read_text(encoding="utf-8")
