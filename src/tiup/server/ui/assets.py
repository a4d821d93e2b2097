"""The page's only style sheet and script, served from ``/ui/assets/`` (never from
another host: the page is used in air-gapped networks).

Their URLs carry a hash of their content, so they are cached for a year and a new
release is fetched at once. The script only enhances: every page reads the same
without it (the filter form is submitted to the server instead).

Colours: text on the amber and red panels reaches a contrast ratio above 7:1 (WCAG AAA),
and every state is also written out in words ("12 days left: renew soon"), so nothing
depends on colour alone, in print either.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

CSS = """\
:root { color-scheme: light; --fg: #1b1f24; --muted: #4a5360; --line: #d0d7de;
  --bg: #ffffff; --head: #f3f5f7; --link: #0b4fa8; --ok-bg: #e6f4ea; --ok-fg: #0f5323;
  --warn-bg: #fff1c2; --warn-fg: #5a3a00; --bad-bg: #fbdada; --bad-fg: #7a0c0c; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto,
  "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--link); }
a:focus-visible, input:focus-visible, button:focus-visible { outline: 3px solid #1f6feb;
  outline-offset: 2px; }
.skip { position: absolute; left: -9999px; }
.skip:focus { left: 1rem; top: 1rem; background: #fff; padding: .5rem; z-index: 1; }
header.site { background: #17212b; color: #fff; padding: .6rem 1.25rem; }
header.site a { color: #fff; text-decoration: none; font-weight: 600; }
main { padding: 1rem 1.25rem 2rem; max-width: 90rem; }
h1 { font-size: 1.6rem; margin: .3rem 0 .6rem; }
h2 { font-size: 1.25rem; margin: 1.6rem 0 .5rem; }
p.lead { color: var(--muted); margin-top: 0; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
  font-size: .9em; }
code.cmd { background: var(--head); border: 1px solid var(--line); border-radius: 4px;
  padding: .05rem .35rem; user-select: all; white-space: nowrap; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0 1rem; }
caption { text-align: left; font-weight: 600; padding: .2rem 0; }
th, td { border-bottom: 1px solid var(--line); padding: .35rem .55rem; text-align: left;
  vertical-align: top; }
thead th { background: var(--head); font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.hash { word-break: break-all; font-size: .78em; color: var(--muted); }
.badge { display: inline-block; border-radius: 3px; padding: 0 .35rem; margin-left: .3rem;
  font-size: .78em; font-weight: 600; border: 1px solid currentColor; }
.badge.flag { color: var(--muted); }
tr.expiry-ok td.left { background: var(--ok-bg); color: var(--ok-fg); }
.expiry-warn, tr.expiry-warn td.left { background: var(--warn-bg); color: var(--warn-fg); }
.expiry-bad, tr.expiry-bad td.left { background: var(--bad-bg); color: var(--bad-fg); }
.panel { border: 1px solid var(--line); border-radius: 6px; padding: .2rem 1rem .6rem;
  margin: .6rem 0 1rem; }
.panel.bad { border-color: var(--bad-fg); background: var(--bad-bg); color: var(--bad-fg); }
.panel.warn { border-color: var(--warn-fg); background: var(--warn-bg); color: var(--warn-fg); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem;
  margin: .6rem 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
.verify-ok { color: var(--ok-fg); font-weight: 600; }
.verify-bad { color: var(--bad-fg); font-weight: 600; }
form.filter { display: flex; gap: .5rem; align-items: center; flex-wrap: wrap;
  margin: .4rem 0; }
form.filter input { font: inherit; padding: .3rem .5rem; min-width: 18rem;
  border: 1px solid #6e7781; border-radius: 4px; }
form.filter button { font: inherit; padding: .3rem .8rem; }
nav.pages ul { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .3rem; }
nav.pages a, nav.pages span { display: inline-block; padding: .1rem .5rem;
  border: 1px solid var(--line); border-radius: 4px; }
nav.pages [aria-current] { background: var(--fg); color: #fff; }
footer.site { color: var(--muted); font-size: .85rem; padding: 0 1.25rem 1.5rem; }
@media print {
  body { font-size: 10pt; color: #000; }
  header.site, .skip, form.filter, nav.pages, .noprint { display: none !important; }
  main { padding: 0; max-width: none; }
  a { color: #000; text-decoration: none; }
  tr { break-inside: avoid; }
  thead { display: table-header-group; }
  .panel, tr td.left { background: none !important; }
  tr[hidden] { display: none; }
}
"""

JS = """\
(function () {
  "use strict";
  var here = document.querySelectorAll("[data-origin]");
  for (var i = 0; i < here.length; i++) { here[i].textContent = location.origin; }
  var input = document.querySelector("input[data-filter]");
  if (!input) { return; }
  var table = document.getElementById(input.getAttribute("data-filter"));
  var status = document.getElementById(input.getAttribute("data-status"));
  if (!table || !table.tBodies.length) { return; }
  var rows = table.tBodies[0].rows;
  var noun = input.getAttribute("data-noun") || "rows";
  function apply() {
    var terms = input.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var shown = 0;
    for (var r = 0; r < rows.length; r++) {
      var text = rows[r].getAttribute("data-search") || "";
      var ok = terms.every(function (t) { return text.indexOf(t) !== -1; });
      rows[r].hidden = !ok;
      if (ok) { shown++; }
    }
    if (status) {
      status.textContent = terms.length ? shown + " of " + rows.length + " " + noun + " shown"
                                        : rows.length + " " + noun;
    }
  }
  input.addEventListener("input", apply);
  document.documentElement.setAttribute("data-filter-ready", "1");
})();
"""


@dataclass(frozen=True)
class Asset:
    name: str
    body: bytes
    content_type: str


def _asset(stem: str, ext: str, text: str, content_type: str) -> Asset:
    body = text.encode("utf-8")
    return Asset(f"{stem}-{hashlib.sha256(body).hexdigest()[:12]}.{ext}", body, content_type)


STYLE = _asset("tiup", "css", CSS, "text/css; charset=utf-8")
SCRIPT = _asset("tiup", "js", JS, "text/javascript; charset=utf-8")
#: Served under ``/ui/assets/<name>``.
ASSETS = {a.name: a for a in (STYLE, SCRIPT)}
