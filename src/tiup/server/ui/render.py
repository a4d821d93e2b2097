"""HTML pages of the mirror's web page, from the verified catalog (:mod:`.view`).

Every value that comes from a manifest (ids, owner names, descriptions, versions,
platforms, times, hashes) is escaped with :func:`html.escape`: component owners write
those strings, and the page must not run what they write. Links are built only from
validated component ids. The pages are complete without the script
(:mod:`.assets`): it only filters the table as the user types.

Expiry colours (the health panel, a component's manifest): red ``expiry-bad`` when
expired or under :data:`RED_DAYS` days left, amber ``expiry-warn`` under
:data:`AMBER_DAYS`, else ``expiry-ok``; the words next to them say the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from tiup.errors import ManifestError
from tiup.manifest.timefmt import parse_time
from tiup.server.ui.assets import SCRIPT, STYLE
from tiup.server.ui.catalog import ROLES, ComponentRow, VersionRows
from tiup.server.ui.view import Status

AMBER_DAYS = 30
RED_DAYS = 7
#: Versions per page of a component page (each with all its platforms).
PAGE_VERSIONS = 100
#: The longest filter text honoured (longer input is cut).
MAX_QUERY = 100


def _e(value: object) -> str:
    return escape(str(value), quote=True)


@dataclass(frozen=True)
class Expiry:
    css: str  # expiry-ok | expiry-warn | expiry-bad
    words: str
    days: float | None


def expiry(expires: str, now: datetime) -> Expiry:
    """How close ``expires`` (RFC 3339) is to ``now``, as a colour class and words."""
    try:
        moment = parse_time(expires)
    except ManifestError:
        return Expiry("expiry-bad", "unreadable expiry", None)
    days = (moment - now).total_seconds() / 86400
    if days <= 0:
        ago = int(-days)
        return Expiry("expiry-bad", "expired " + ("today" if ago == 0 else
                                                   f"{ago:,} day{'s' if ago != 1 else ''} ago"),
                      days)
    whole = int(days)
    left = f"{whole:,} day{'s' if whole != 1 else ''} left" if whole else "less than a day left"
    if days < RED_DAYS:
        return Expiry("expiry-bad", f"{left}: renew now", days)
    if days < AMBER_DAYS:
        return Expiry("expiry-warn", f"{left}: renew soon", days)
    return Expiry("expiry-ok", left, days)


def size_text(n: int) -> str:
    """Bytes in binary units (MiB, as everywhere in tiup)."""
    if n < 1024:
        return f"{n} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n_f = n / 1024
        if n_f < 1024 or unit == "TiB":
            return f"{n_f:.1f} {unit}"
        n = int(n_f)
    return f"{n} B"  # pragma: no cover - the loop returns


def _when(text: str) -> str:
    """A ``<time>`` element: ``2026-01-01 00:00 UTC`` (the text itself if it is no time)."""
    try:
        moment = parse_time(text).astimezone(UTC)
    except ManifestError:
        return _e(text)
    return (f'<time datetime="{moment:%Y-%m-%dT%H:%M:%SZ}">'
            f"{moment:%Y-%m-%d %H:%M} UTC</time>")


def _page(title: str, body: str, *, footer: str = "") -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title>"
        '<link rel="icon" href="data:,">'
        f'<link rel="stylesheet" href="/ui/assets/{STYLE.name}">'
        f'<script src="/ui/assets/{SCRIPT.name}" defer></script></head>\n'
        '<body><a class="skip" href="#main">Skip to content</a>'
        '<header class="site"><a href="/ui/">tiup mirror</a></header>\n'
        f'<main id="main">{body}</main>\n'
        f'<footer class="site">{footer}</footer></body></html>\n')


def _footer(status: Status) -> str:
    s = status.summary
    if s is None:
        return "No verified state yet."
    ts = s.roles["timestamp"]
    return (f"Shown from the verified state of timestamp.json version "
            f'<span id="timestamp-version">{ts.version}</span>, read {_when(s.built_at)}.')


def _badges(row: ComponentRow) -> str:
    out = []
    for flag, label in ((row.yanked, "yanked"), (row.hidden, "hidden"),
                        (row.standalone, "standalone")):
        if flag:
            out.append(f'<span class="badge flag">{label}</span>')
    return "".join(out)


def _query(q: str) -> list[str]:
    return q[:MAX_QUERY].lower().split()


# -------------------------------------------------------------------- health
def _verification(v: dict[str, Any] | None, now: datetime) -> str:
    if v is None:
        return "not run yet"
    if v.get("state") == "running":
        prev = v.get("previous")
        text = f"running since {_when(str(v.get('started', '')))}"
        if isinstance(prev, dict):
            text += f"; the previous one: {_verification(prev, now)}"
        return text
    ok = bool(v.get("ok"))
    errors, warnings = int(v.get("errors", 0)), int(v.get("warnings", 0))
    what = f"{int(v.get('manifests_checked', 0)):,} manifests checked; " + (
        "tarballs served from the upstream, not checked" if v.get("tarballs") == "skip"
        else "every tarball present (hashes: <code>tiup mirror verify</code>)")
    ts = v.get("timestamp_version")
    at = f" at timestamp version {int(ts)}" if isinstance(ts, int) else ""
    head = ('<span class="verify-ok" id="verify-result">passed</span>' if ok else
            '<span class="verify-bad" id="verify-result">failed</span>')
    text = (f"{head}: {errors:,} error{'s' if errors != 1 else ''}, {warnings:,} "
            f"warning{'s' if warnings != 1 else ''} ({what}){at}, finished "
            f"{_when(str(v.get('finished', '')))}")
    findings = [f for f in v.get("findings", []) if isinstance(f, dict)]
    if findings:
        items = "".join(f"<li><strong>{_e(f.get('severity', ''))}</strong> "
                        f"<code>{_e(f.get('file', ''))}</code>: {_e(f.get('message', ''))}"
                        "</li>" for f in findings[:10])
        more = int(v.get("errors", 0)) + int(v.get("warnings", 0)) - min(len(findings), 10)
        text += f'<ul class="findings">{items}</ul>'
        if more > 0:
            text += f"<p>… and {more:,} more: run <code>tiup mirror verify</code>.</p>"
    return text


def health(status: Status, now: datetime) -> str:
    """The health panel: roles and their expiry, root keys, last publish, verification."""
    s = status.summary
    parts = ['<section aria-labelledby="health-h"><h2 id="health-h">Health</h2>']
    if status.error:
        parts.append('<div class="panel bad" role="alert"><p><strong>The mirror\'s current '
                     f"state does not verify</strong> ({_when(status.error_at)}): "
                     f"{_e(status.error)}</p>"
                     + ("<p>This page shows the last state that verified.</p>" if s else "")
                     + "</div>")
    if s is not None:
        rows = []
        for name in ROLES:
            role = s.roles[name]
            ex = expiry(role.expires, now)
            rows.append(f'<tr class="{ex.css}" data-role="{name}"><th scope="row">{name}</th>'
                        f'<td class="num">{role.version:,}</td><td>{_when(role.expires)}</td>'
                        f'<td class="left">{_e(ex.words)}</td></tr>')
        parts.append('<table id="roles"><caption>Signed roles (amber under '
                     f"{AMBER_DAYS} days left, red under {RED_DAYS})</caption><thead><tr>"
                     '<th scope="col">Role</th><th scope="col" class="num">Version</th>'
                     '<th scope="col">Expires</th><th scope="col">Days left</th></tr>'
                     f'</thead><tbody>{"".join(rows)}</tbody></table>')
        keys = ", ".join(f"<code>{_e(k)}</code>" for k in s.root_keys) or "none"
        last = s.last_publish
        last_text = (f'<a href="/ui/component/{quote(last.component)}">'
                     f"{_e(last.component)}</a> {_e(last.version)} ({_e(last.platform)}), "
                     f"{_when(last.released)}" if last else "nothing published yet")
        parts.append(
            '<dl class="facts">'
            f'<dt>Root</dt><dd>version {s.roles["root"].version:,}, signed by '
            f"{s.root_threshold} of {len(s.root_keys)} key{'s' if len(s.root_keys) != 1 else ''}"
            f": {keys}</dd>"
            f'<dt>Last publish</dt><dd id="last-publish">{last_text}</dd>'
            f'<dt>Last verification</dt><dd id="verification">'
            f"{_verification(status.verification, now)}</dd></dl>")
    parts.append("</section>")
    return "".join(parts)


# --------------------------------------------------------------------- index
def index_page(status: Status, now: datetime, q: str = "") -> str:
    """``/`` and ``/ui/``: health panel and the component table (``q`` pre-filters it:
    rows that do not match are rendered ``hidden``, so the script can show them again)."""
    s = status.summary
    body = ['<h1>Components</h1><p class="lead">Use this mirror: <code class="cmd">tiup '
            'mirror set <span data-origin>http://this-server</span></code></p>']
    body.append(health(status, now))
    if s is None:
        body.append("<p>The mirror's state is being read; reload in a moment.</p>")
        return _page("tiup mirror", "".join(body), footer=_footer(status))
    terms = _query(q)
    rows = []
    shown = 0
    for row in s.components:
        search = " ".join((row.id, row.owner, row.owner_name, row.description,
                           *row.platforms)).lower()
        match = all(t in search for t in terms)
        shown += match
        link = f'<a href="/ui/component/{quote(row.id)}">{_e(row.id)}</a>{_badges(row)}'
        ex = expiry(row.expires, now) if row.expires else None
        if ex is not None and ex.css != "expiry-ok":
            link += f' <span class="badge {ex.css}">manifest {_e(ex.words)}</span>'
        if row.error:
            desc = f'<span class="verify-bad">does not verify: {_e(row.error)}</span>'
        else:
            desc = _e(row.description)
        size = ("" if not row.latest else size_text(row.size_min) if
                row.size_min == row.size_max else
                f"{size_text(row.size_min)} – {size_text(row.size_max)}")
        owner = _e(row.owner_name or row.owner)
        if row.owner_name and row.owner_name != row.owner:
            owner += f' <span class="mono">({_e(row.owner)})</span>'
        rows.append(
            f'<tr data-search="{_e(search)}"{"" if match else " hidden"}>'
            f'<th scope="row">{link}</th><td>{owner}</td><td>{desc}</td>'
            f'<td>{_e(row.latest) or "—"}</td><td>{_e(", ".join(row.platforms)) or "—"}</td>'
            f'<td class="num">{size or "—"}</td></tr>')
    total = len(s.components)
    count = f"{shown} of {total} components shown" if terms else f"{total} components"
    body.append(
        '<section aria-labelledby="components-h"><h2 id="components-h">Components</h2>'
        '<form class="filter" role="search" method="get" action="/ui/">'
        '<label for="q">Filter components</label>'
        f'<input id="q" name="q" type="search" value="{_e(q[:MAX_QUERY])}" autocomplete="off" '
        'data-filter="components" data-status="component-count" data-noun="components" '
        'placeholder="name, owner, description, platform">'
        '<button type="submit">Filter</button></form>'
        f'<p id="component-count" role="status" aria-live="polite">{count}</p>'
        '<table id="components"><caption>Components of this mirror (latest version, its '
        'size per platform)</caption><thead><tr><th scope="col">Component</th>'
        '<th scope="col">Owner</th><th scope="col">Description</th>'
        '<th scope="col">Latest</th><th scope="col">Platforms</th>'
        f'<th scope="col" class="num">Size</th></tr></thead><tbody>{"".join(rows)}</tbody>'
        "</table></section>")
    return _page(f"tiup mirror: {total} components", "".join(body), footer=_footer(status))


# ----------------------------------------------------------------- component
def _pages_nav(comp_id: str, page: int, pages: int, q: str) -> str:
    if pages <= 1:
        return ""

    def href(n: int) -> str:
        params = {"page": str(n)} if n > 1 else {}
        if q:
            params["q"] = q
        return f"/ui/component/{quote(comp_id)}" + (f"?{urlencode(params)}" if params else "")

    wanted = sorted({1, pages, *range(max(1, page - 3), min(pages, page + 3) + 1)})
    items = []
    if page > 1:
        items.append(f'<li><a href="{_e(href(page - 1))}" rel="prev">Previous</a></li>')
    last = 0
    for n in wanted:
        if n - last > 1:
            items.append("<li><span>…</span></li>")
        if n == page:
            items.append(f'<li><span aria-current="page">{n}</span></li>')
        else:
            items.append(f'<li><a href="{_e(href(n))}">{n}</a></li>')
        last = n
    if page < pages:
        items.append(f'<li><a href="{_e(href(page + 1))}" rel="next">Next</a></li>')
    return f'<nav class="pages" aria-label="Pages of versions"><ul>{"".join(items)}</ul></nav>'


def component_page(status: Status, row: ComponentRow, rows: VersionRows | None,
                   now: datetime, page: int = 1, q: str = "") -> str:
    """``/ui/component/<id>``: the manifest's facts and every version × platform,
    :data:`PAGE_VERSIONS` versions per page, newest first (``q`` filters versions and
    platforms across all pages)."""
    ex = expiry(row.expires, now) if row.expires else None
    facts = [f"<dt>Owner</dt><dd>{_e(row.owner_name or row.owner)} "
             f'<span class="mono">({_e(row.owner)})</span></dd>']
    if row.description:
        facts.append(f"<dt>Description</dt><dd>{_e(row.description)}</dd>")
    if row.error:
        facts.append(f'<dt>Manifest</dt><dd class="verify-bad">does not verify: '
                     f"{_e(row.error)}</dd>")
    else:
        facts.append(f"<dt>Manifest</dt><dd>version {row.manifest_version:,}, expires "
                     f'{_when(row.expires)} <span class="badge {ex.css if ex else ""}">'
                     f"{_e(ex.words if ex else '')}</span></dd>")
    flags = _badges(row)
    if flags:
        facts.append(f"<dt>Flags</dt><dd>{flags}</dd>")
    if row.latest:
        facts.append(f'<dt>Install</dt><dd><code class="cmd">tiup install {_e(row.id)}</code> '
                     f"(latest: {_e(row.latest)})</dd>")
    body = [f"<h1>{_e(row.id)}</h1>", f'<dl class="facts">{"".join(facts)}</dl>']
    versions = rows or []
    terms = _query(q)
    if terms:
        versions = [(v, items) for v, items in versions
                    if all(t in (v + " " + " ".join(i[0] for i in items)).lower()
                           for t in terms)]
    pages = max(1, -(-len(versions) // PAGE_VERSIONS))
    page = min(max(1, page), pages)
    chunk = versions[(page - 1) * PAGE_VERSIONS: page * PAGE_VERSIONS]
    out = []
    for ver, items in chunk:
        for plat, released, length, sha256, yanked in items:
            mark = '<span class="badge flag">yanked</span>' if yanked else ""
            cmd = ("—" if yanked or row.yanked else
                   f'<code class="cmd">tiup install {_e(row.id)}:{_e(ver)}</code>')
            out.append(f'<tr><th scope="row">{_e(ver)}{mark}</th><td>{_e(plat)}</td>'
                       f"<td>{_when(released)}</td>"
                       f'<td class="num">{size_text(length)}</td>'
                       f'<td><code class="hash">{_e(sha256)}</code></td><td>{cmd}</td></tr>')
    n = len(versions)
    total = len(rows or [])
    first = (page - 1) * PAGE_VERSIONS + 1 if n else 0
    where = (f"versions {first:,}–{first + len(chunk) - 1:,} of {n:,}" if n else "no versions")
    if terms:
        where += f" matching “{_e(q[:MAX_QUERY])}” ({total:,} in all)"
    nav = _pages_nav(row.id, page, pages, q[:MAX_QUERY])
    body.append(
        '<section aria-labelledby="versions-h"><h2 id="versions-h">Versions</h2>'
        f'<form class="filter" role="search" method="get" action="/ui/component/{quote(row.id)}">'
        '<label for="q">Filter versions</label>'
        f'<input id="q" name="q" type="search" value="{_e(q[:MAX_QUERY])}" autocomplete="off" '
        'placeholder="v1.2, linux/arm64"><button type="submit">Filter</button></form>'
        f'<p id="version-count" role="status">Page {page} of {pages}: {where}</p>{nav}'
        '<table id="versions"><caption>Every version × platform, newest first</caption>'
        '<thead><tr><th scope="col">Version</th><th scope="col">Platform</th>'
        '<th scope="col">Released</th><th scope="col" class="num">Size</th>'
        '<th scope="col">sha256</th><th scope="col">Install</th></tr></thead>'
        f'<tbody>{"".join(out)}</tbody></table>{nav}</section>')
    return _page(f"{row.id} · tiup mirror", "".join(body), footer=_footer(status))


def message_page(status: Status, title: str, text: str) -> str:
    """A page with one message (not found, not ready)."""
    return _page(f"{title} · tiup mirror",
                 f"<h1>{_e(title)}</h1><p>{_e(text)}</p>"
                 '<p><a href="/ui/">All components</a></p>', footer=_footer(status))
