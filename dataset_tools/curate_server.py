"""The curation page: a local web server showing a set's clusters, saving each decision at once.

It listens on 127.0.0.1 only, on a free port, and answers only requests that carry the
secret token it was started with (?t=TOKEN); anything else gets 403. Every decision is
applied to curation.json (see lyriscope.dataset_tools.curation) and written atomically
before the answer goes back, so closing the browser or the server loses nothing.

Routes (all GET unless said): /  the page;  /api/state  every clustered line with its
clusters, decisions and each image's fate;  /sheet?line=N&sheet=SLUG/cluster-KK.png  a
contact sheet;  /thumb?line=N&sha=SHA256  one image's thumbnail;  POST /api/decide  a
JSON decision {"line": N, "action": "cluster"|"image"|"merge"|"outlier", ...}.
"""

from __future__ import annotations

import io
import json
import secrets
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from PIL import Image

from lyriscope.dataset_tools import curation as cur
from lyriscope.dataset_tools.cluster import clusters_dir, images_dir, read_clusters
from lyriscope.dataset_tools.contact_sheet import SheetLayout, sheet_size, square_thumbnail
from lyriscope.dataset_tools.verify import RejectedImage, load_rgb
from lyriscope.errors import DatasetError

THUMB_SIDE = 96
MAX_BODY_BYTES = 64 * 1024


class CurationSession:
    """The state behind the page: the set folder, its clustered lines and a lock for writes."""

    def __init__(
        self, set_root: str | Path, lines: list[int], *, titles: dict[int, str] | None = None
    ) -> None:
        self.set_root = Path(set_root)
        self.lines = list(lines)  # 0-based lines that have clusters
        self.titles = dict(titles or {})
        self.token = secrets.token_urlsafe(24)
        self._lock = threading.Lock()
        self._clusters = {line: read_clusters(self.set_root, line) for line in self.lines}
        missing = [line + 1 for line, doc in self._clusters.items() if doc is None]
        if missing:
            raise DatasetError(
                f"{self.set_root}: line {missing[0]} has no clusters; run "
                f"`lyriscope cluster {self.set_root}` first"
            )

    def state(self) -> dict:
        """Everything the page shows: per line its clusters, decisions and image fates."""
        doc = cur.load_curation(self.set_root)
        return {
            "set": self.set_root.name,
            "sheet_row_width": self._widest_sheet(),  # px: this sheet fills a card
            "lines": [self._line_state(doc, line) for line in self.lines],
        }

    def _widest_sheet(self) -> int:
        """Natural width of the widest contact sheet on the page (they share its scale)."""
        layout = SheetLayout()
        counts = [
            cluster["count"]
            for doc in self._clusters.values()
            for group in doc["groups"]
            for cluster in group["clusters"]
        ]
        return max(sheet_size(min(n, layout.columns), layout)[0] for n in counts or [1])

    def _line_state(self, doc: dict, line: int) -> dict:
        clusters = self._clusters[line]
        entry = cur.line_curation(doc, line)
        fates = cur.decide_images(clusters, entry)
        return {
            "line": line + 1,
            "text": self.titles.get(line, ""),
            "groups": clusters["groups"],
            "curation": entry,
            "kept": {f["sha256"]: f["kept"] for f in fates},
            "kept_count": sum(f["kept"] for f in fates),
            "count": len(fates),
        }

    def decide(self, request: dict) -> dict:
        """Apply one decision from the page, save curation.json, return the line's new state."""
        try:
            line = int(request["line"]) - 1
            action = request["action"]
        except (KeyError, TypeError, ValueError):
            raise DatasetError("a decision needs 'line' (from 1) and 'action'") from None
        if line not in self._clusters:
            raise DatasetError(f"line {line + 1} has no clusters on this page")
        with self._lock:  # read-modify-write of one file from several request threads
            doc = cur.load_curation(self.set_root)
            if action == "cluster":
                group = str(request.get("group", ""))
                cluster = _whole(request.get("cluster"), "cluster")
                if (
                    not any(
                        g["slug"] == group and cluster < len(g["clusters"])
                        for g in self._clusters[line]["groups"]
                    )
                    or cluster < 0
                ):
                    raise DatasetError(
                        f"line {line + 1} has no cluster {cluster} in group {group!r}"
                    )
                doc = cur.set_cluster(doc, line, group, cluster, request.get("decision"))
            elif action == "image":
                sha256 = str(request.get("sha256", ""))
                if self._image_record(line, sha256) is None:
                    raise DatasetError(f"line {line + 1} has no image {sha256[:16]!r}")
                doc = cur.set_image(doc, line, sha256, request.get("decision"))
            elif action == "merge":
                doc = cur.set_merged(doc, line, bool(request.get("merged")))
            elif action == "outlier":
                value = request.get("threshold")
                if value is not None and (
                    isinstance(value, bool) or not isinstance(value, int | float)
                ):
                    raise DatasetError(f"threshold: expected a number or null, got {value!r:.40}")
                doc = cur.set_outlier(doc, line, None if value is None else float(value))
            else:
                raise DatasetError(
                    f"unknown action {action!r}; expected cluster, image, merge or outlier"
                )
            cur.save_curation(self.set_root, doc)
            return self._line_state(doc, line)

    def sheet_file(self, line: int, sheet: str) -> Path | None:
        """The contact sheet file named in a line's clusters.json (None for any other name)."""
        doc = self._clusters.get(line)
        names = {c["sheet"] for g in (doc or {}).get("groups", []) for c in g["clusters"]}
        return clusters_dir(self.set_root, line) / sheet if sheet in names else None

    def image_file(self, line: int, sha256: str) -> Path | None:
        """The original image file of a clustered image (None when the line has no such image)."""
        record = self._image_record(line, sha256)
        return None if record is None else images_dir(self.set_root, line) / record["file"]

    def _image_record(self, line: int, sha256: str) -> dict | None:
        doc = self._clusters.get(line)
        for group in (doc or {}).get("groups", []):
            for cluster in group["clusters"]:
                for img in cluster["images"]:
                    if img["sha256"] == sha256:
                        return img
        return None


def _whole(value: object, name: str) -> int:
    """A whole number from a decision, or DatasetError (the page sends ints; anyone may not)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise DatasetError(f"{name}: expected a whole number, got {value!r:.40}")
    return value


def make_server(session: CurationSession, *, port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server for the session on 127.0.0.1 (port 0 = a free one); call serve_forever()."""
    page = PAGE.encode("utf-8")

    class Handler(BaseHTTPRequestHandler):
        server_version = "lyriscope-curate"

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base's name
            pass  # the terminal shows the URL and errors, not every thumbnail

        def _authorised(self, query: dict[str, list[str]]) -> bool:
            token = (query.get("t") or [""])[0]
            if secrets.compare_digest(token.encode(), session.token.encode()):
                return True
            self._send(
                HTTPStatus.FORBIDDEN, b"forbidden: open the URL with its token\n", "text/plain"
            )
            return False

        def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, obj: object, status: HTTPStatus = HTTPStatus.OK) -> None:
            self._send(status, json.dumps(obj).encode("utf-8"), "application/json")

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            if not self._authorised(query):
                return
            if url.path == "/":
                self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
            elif url.path == "/api/state":
                self._json(session.state())
            elif url.path in ("/sheet", "/thumb"):
                self._image(url.path, query)
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

        def _image(self, route: str, query: dict[str, list[str]]) -> None:
            try:
                line = int((query.get("line") or ["0"])[0]) - 1
            except ValueError:
                line = -1
            if route == "/sheet":
                path = session.sheet_file(line, (query.get("sheet") or [""])[0])
                if path is not None and path.is_file():
                    self._send(HTTPStatus.OK, path.read_bytes(), "image/png")
                    return
            else:
                path = session.image_file(line, (query.get("sha") or [""])[0])
                if path is not None:
                    try:
                        thumb = square_thumbnail(load_rgb(path), THUMB_SIDE)
                    except RejectedImage:
                        thumb = Image.new("RGB", (THUMB_SIDE, THUMB_SIDE), (90, 0, 0))
                    buf = io.BytesIO()
                    thumb.save(buf, format="JPEG", quality=85)
                    self._send(HTTPStatus.OK, buf.getvalue(), "image/jpeg")
                    return
            self._send(HTTPStatus.NOT_FOUND, b"no such image\n", "text/plain")

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            url = urlsplit(self.path)
            if not self._authorised(parse_qs(url.query)):
                return
            if url.path != "/api/decide":
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
                return
            declared = self.headers.get("Content-Length") or ""
            length = int(declared) if declared.isdigit() else 0
            if not 0 < length <= MAX_BODY_BYTES:
                self._json({"error": "expected a small JSON body"}, HTTPStatus.BAD_REQUEST)
                return
            try:
                request = json.loads(self.rfile.read(length))
                if not isinstance(request, dict):
                    raise DatasetError("a decision is a JSON object")
                self._json(session.decide(request))
            except (ValueError, RecursionError):
                self._json({"error": "the body is not a decision in JSON"}, HTTPStatus.BAD_REQUEST)
            except DatasetError as exc:
                self._json({"error": str(exc)}, HTTPStatus.BAD_REQUEST)

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def page_url(server: ThreadingHTTPServer, session: CurationSession) -> str:
    """The URL of the page, token included."""
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/?t={session.token}"


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>lyriscope curate</title>
<style>
 body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #161616; color: #e8e8e8; }
 header { padding: 10px 16px; background: #222; position: sticky; top: 0; z-index: 2; }
 header small { color: #aaa; margin-left: 1em; }
 section.line { padding: 8px 16px 16px; border-bottom: 1px solid #333; }
 section.line h2 { font-size: 16px; margin: 8px 0; }
 .controls { display: flex; gap: 24px; align-items: center; margin-bottom: 8px; }
 .group h3 { font-size: 13px; color: #bbb; margin: 8px 0 4px; }
 .cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 10px; }
 .card { background: #202020; border: 2px solid #3a3; border-radius: 6px; padding: 6px; outline: none; }
 .card.drop { border-color: #a33; opacity: .55; }
 .card:focus { box-shadow: 0 0 0 3px #58f; }
 .card img.sheet { max-width: 100%; display: block; cursor: pointer; }
 .card .bar { display: flex; flex-wrap: wrap; justify-content: space-between; align-items: center; gap: 4px; margin-top: 4px; }
 .card .bar span { white-space: nowrap; }
 .badge { font-weight: bold; color: #6c6; }
 .card.drop .badge { color: #e66; }
 .card button { font: inherit; padding: 2px 10px; margin-left: 4px; cursor: pointer; }
 .thumbs { display: flex; flex-wrap: wrap; gap: 4px; margin-top: 6px; }
 .thumbs img { width: 64px; height: 64px; border: 3px solid #3a3; cursor: pointer; }
 .thumbs img.out { border-color: #a33; opacity: .5; }
 .thumbs img.forced { border-style: dashed; }
 #error { color: #f77; margin-left: 1em; }
</style></head>
<body>
<header><b>lyriscope curate</b> <span id="set"></span>
<small>click a sheet or press K keep, D drop, space toggle, arrows move, I images</small>
<span id="error"></span></header>
<main id="lines">loading…</main>
<script>
"use strict";
const token = new URLSearchParams(location.search).get("t") || "";
const q = (params) => new URLSearchParams({...params, t: token}).toString();
let state = null;
const openThumbs = new Set();  // cards whose single images are shown, kept across re-renders

async function post(body) {
  const r = await fetch("/api/decide?" + q({}), {method: "POST",
    headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  const answer = await r.json();
  if (!r.ok) { document.getElementById("error").textContent = answer.error; return; }
  document.getElementById("error").textContent = "";
  const i = state.lines.findIndex(l => l.line === answer.line);
  state.lines[i] = answer;
  renderLine(answer, document.getElementById("line-" + answer.line));
}

function clusterDecision(line, slug, id) {
  return ((line.curation.clusters[slug] || {})[String(id)]) || "keep";
}

function activeGroups(line) {
  const merged = line.groups.filter(g => g.slug === "_all");
  if (line.curation.merged || line.groups.length === 1) return merged;
  return line.groups.filter(g => g.slug !== "_all");
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function renderLine(line, section) {
  const focused = document.activeElement && document.activeElement.dataset.key;
  section.replaceChildren();
  section.append(el("h2", {}, `Line ${line.line}` + (line.text ? ` — ${line.text}` : ""),
    el("small", {class: "count"}, ` ${line.kept_count} of ${line.count} images kept`)));
  const merge = el("input", {type: "checkbox", class: "merge", onchange: e =>
    post({line: line.line, action: "merge", merged: e.target.checked})});
  merge.checked = line.curation.merged;
  const value = line.curation.outlier;
  const slider = el("input", {type: "range", min: "0", max: "5", step: "0.1", class: "outlier",
    value: value === null ? "0" : String(value)});
  const shown = el("span", {}, value === null ? "off" : String(value));
  slider.addEventListener("input", () => shown.textContent = slider.value === "0" ? "off" : slider.value);
  slider.addEventListener("change", () => post({line: line.line, action: "outlier",
    threshold: slider.value === "0" ? null : Number(slider.value)}));
  section.append(el("div", {class: "controls"},
    el("label", {}, merge, " merge queries"),
    el("label", {}, "outlier threshold ", slider, " ", shown)));
  for (const group of activeGroups(line)) {
    const cards = el("div", {class: "cards"});
    for (const c of group.clusters) cards.append(card(line, group, c));
    section.append(el("div", {class: "group"},
      el("h3", {}, group.query === null ? "all queries" : `query: ${group.query}`), cards));
  }
  if (focused) {
    const again = section.querySelector(`[data-key="${focused}"]`);
    if (again) again.focus();
  }
}

function card(line, group, c) {
  const decision = clusterDecision(line, group.slug, c.id);
  const flip = () => post({line: line.line, action: "cluster", group: group.slug, cluster: c.id,
    decision: decision === "keep" ? "drop" : "keep"});
  const set = d => post({line: line.line, action: "cluster", group: group.slug, cluster: c.id, decision: d});
  const key = `${line.line}/${group.slug}/${c.id}`;
  const box = el("div", {class: "card " + decision, tabindex: "0", "data-key": key,
    "data-line": String(line.line), "data-group": group.slug, "data-cluster": String(c.id)});
  const thumbs = el("div", {class: "thumbs", hidden: ""});
  const showThumbs = () => {
    thumbs.replaceChildren(...c.images.map(img => thumb(line, img)));
    thumbs.hidden = false;
  };
  const toggleThumbs = () => {
    if (thumbs.hidden) { openThumbs.add(key); showThumbs(); }
    else { openThumbs.delete(key); thumbs.hidden = true; }
  };
  if (openThumbs.has(key)) showThumbs();
  box.addEventListener("keydown", e => {
    if (e.key === "k" || e.key === "K") set("keep");
    else if (e.key === "d" || e.key === "D") set("drop");
    else if (e.key === " ") { flip(); e.preventDefault(); }
    else if (e.key === "i" || e.key === "I") toggleThumbs();
    else if (e.key.startsWith("Arrow")) { move(box, e.key === "ArrowRight" || e.key === "ArrowDown" ? 1 : -1); e.preventDefault(); }
  });
  box.append(
    el("img", {class: "sheet", alt: `cluster ${c.id}`, title: "click: keep or drop this cluster",
      src: "/sheet?" + q({line: line.line, sheet: c.sheet}), onclick: flip, onload: fitSheet}),
    el("div", {class: "bar"},
      el("span", {}, `cluster ${c.id} · ${c.count} images ` +
        (c.text_score === undefined ? "" : `· matches ${c.text_score.toFixed(2)} `),
        el("span", {class: "badge"}, decision)),
      el("span", {},
        el("button", {class: "keep", onclick: () => set("keep")}, "keep"),
        el("button", {class: "drop", onclick: () => set("drop")}, "drop"),
        el("button", {class: "images", onclick: toggleThumbs}, "images"))),
    thumbs);
  return box;
}

// Every sheet at one scale, the widest one filling its card, so a cluster of 1 image and a
// cluster of 8 show their thumbnails at the same size.
function fitSheet(e) {
  const sheet = e.target;
  sheet.style.width = Math.min(100, 100 * sheet.naturalWidth / state.sheet_row_width) + "%";
}

function thumb(line, img) {
  const forced = line.curation.images[img.sha256];
  const kept = line.kept[img.sha256];
  const next = forced === undefined ? (kept ? "drop" : "keep") : (forced === "keep" ? "drop" : null);
  return el("img", {class: (kept ? "" : "out") + (forced ? " forced" : ""), loading: "lazy",
    title: `${img.file} · outlier ${img.outlier}` + (forced ? ` · forced ${forced}` : "") +
      " · click to override", src: "/thumb?" + q({line: line.line, sha: img.sha256}),
    onclick: () => post({line: line.line, action: "image", sha256: img.sha256, decision: next})});
}

function move(box, step) {
  const all = [...document.querySelectorAll(".card")];
  const next = all[all.indexOf(box) + step];
  if (next) next.focus();
}

async function main() {
  const r = await fetch("/api/state?" + q({}));
  state = await r.json();
  document.getElementById("set").textContent = state.set;
  const root = document.getElementById("lines");
  root.replaceChildren();
  for (const line of state.lines) {
    const section = el("section", {class: "line", id: "line-" + line.line});
    root.append(section);
    renderLine(line, section);
  }
  document.body.dataset.ready = "1";
}
main();
</script>
</body></html>
"""
