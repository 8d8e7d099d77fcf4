"""The labelling page's web server: loopback only, one token per session, a Host check.

Another web page open in the same browser cannot drive it: every request must name this
server by its loopback address in ``Host`` (no DNS rebinding), the page and the frames need
the session's token in the URL, and the API (JSON over ``fetch``) needs it as an
``Authorization: Bearer`` header, which a cross-site form or image cannot send. The page
builds its text with ``textContent`` (device text is never markup) under a
Content-Security-Policy that allows only its own script.
"""

from __future__ import annotations

import json
import mimetypes
import secrets
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from edgecls.errors import EdgeclsError
from edgecls.review.heatmaps import HeatmapWorker
from edgecls.review.session import ReviewSession, page_record
from edgecls.live.serve_auth import StreamAuth

LOOPBACK = "127.0.0.1"
MAX_BODY = 64_000
_STATIC = {"/app.js": "app.js", "/app.css": "app.css"}
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class ReviewServer:
    """Serves one ``ReviewSession`` on 127.0.0.1 (``port`` 0: a free one) until ``close``."""

    def __init__(self, session: ReviewSession, port: int = 0, heatmaps: HeatmapWorker | None = None) -> None:
        self.session = session
        self.heatmaps = heatmaps
        self.token = secrets.token_urlsafe(24)
        self.auth = StreamAuth(token=self.token)
        self._httpd = ThreadingHTTPServer((LOOPBACK, port), _handler_for(self))
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.hosts = {f"{LOOPBACK}:{self.port}", f"localhost:{self.port}"}
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.1,), name="edgecls-review",
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/?token={self.token}"

    def start(self) -> ReviewServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def state(self) -> dict[str, Any]:
        """Everything the page needs at start: classes, frames in order, refused files, counts."""
        session = self.session
        return {"inbox": str(session.inbox), "dataset": str(session.target.root),
                "classes": session.target.classes, "counts": session.counts,
                "frames": [page_record(session.frames[name]) for name in session.order],
                "refused": session.refused, "heatmaps": self.heatmaps is not None}

    def act(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """Carries out one decision from the page."""
        session, name = self.session, str(body.get("name", ""))
        result: dict[str, Any] = {}
        if action == "label":
            result["entry"] = session.label(name, str(body.get("label", "")), bool(body.get("new")))
        elif action == "none":
            result["entry"] = session.none_of_these(name)
        elif action == "skip":
            session.skip(name)
        elif action == "undo":
            result = session.undo()
        else:
            raise _NotFound()
        return {**result, "classes": session.target.classes, "counts": session.counts}


class _NotFound(Exception):
    pass


def _handler_for(server: ReviewServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        review = server
    return Handler


class _Handler(BaseHTTPRequestHandler):
    review: ReviewServer
    server_version = "edgecls-review"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 -- the stdlib's name
        pass  # the terminal shows the session summary, not every request

    def do_GET(self) -> None:  # noqa: N802 -- the stdlib's name
        if not self._host_ok():
            return
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path in _STATIC:
            return self._send(200, _static(_STATIC[url.path]), _content_type(_STATIC[url.path]))
        if url.path in ("/", "/frame"):
            if not self.review.auth.allows(None, query.get("token", [])):
                return self._error(403, "this page needs the session's token: open the URL edgecls review printed")
            if url.path == "/":
                return self._send(200, _static("page.html"), "text/html; charset=utf-8")
            return self._frame(query.get("name", [""])[0])
        if not self._bearer_ok():
            return
        if url.path == "/api/state":
            return self._json(200, self.review.state())
        if url.path == "/api/heatmap":
            return self._heatmap(query.get("name", [""])[0])
        self._error(404, "not found")

    def do_POST(self) -> None:  # noqa: N802 -- the stdlib's name
        if not (self._host_ok() and self._bearer_ok()):
            return
        length = int(self.headers.get("Content-Length") or 0)
        if not self.headers.get("Content-Type", "").startswith("application/json") or length > MAX_BODY:
            return self._error(415, "send a small JSON body")
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            action = urlsplit(self.path).path.removeprefix("/api/")
            self._json(200, self.review.act(action, body if isinstance(body, dict) else {}))
        except _NotFound:
            self._error(404, "not found")
        except ValueError:
            self._error(400, "the body is not JSON")
        except EdgeclsError as exc:
            self._json(409, {"error": exc.message, "hint": exc.hint})
        except FileExistsError as exc:
            self._json(409, {"error": f"{exc.filename} exists: nothing was moved", "hint": None})

    # -- checks ---------------------------------------------------------------------
    def _host_ok(self) -> bool:
        if self.headers.get("Host", "") in self.review.hosts:
            return True
        self._error(421, "wrong Host: this server answers only to its loopback address")
        return False

    def _bearer_ok(self) -> bool:
        if self.review.auth.allows(self.headers.get("Authorization"), []):
            return True
        self._error(403, "missing or wrong token")
        return False

    # -- answers ---------------------------------------------------------------------
    def _frame(self, name: str) -> None:
        frame = self.review.session.frames.get(name)
        if frame is None or not frame.path.is_file():
            return self._error(404, "no such frame in the inbox")
        self._send(200, frame.path.read_bytes(), _content_type(frame.path.name))

    def _heatmap(self, name: str) -> None:
        frame = self.review.session.frames.get(name)
        if self.review.heatmaps is None:
            return self._json(404, {"error": "no heatmaps: start edgecls review with --run"})
        if frame is None:
            return self._json(404, {"error": "no such frame in the inbox"})
        result = self.review.heatmaps.get(frame.path)
        if result is None:
            return self._json(202, {"pending": True})
        if isinstance(result, str):
            return self._json(404, {"error": result})
        self._send(200, result, "image/png")

    def _json(self, status: int, data: dict[str, Any]) -> None:
        self._send(status, json.dumps(data).encode("utf-8"), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._send(status, message.encode("utf-8"), "text/plain; charset=utf-8")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status, HTTPStatus(status).phrase)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in _SECURITY_HEADERS.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


def _static(name: str) -> bytes:
    return resources.files("edgecls.review").joinpath("static", name).read_bytes()


def _content_type(name: str) -> str:
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return f"{kind}; charset=utf-8" if kind.startswith("text/") or kind.endswith("javascript") else kind

