"""The HTTP server behind ``--serve``, built to be left open on a network for weeks.

One thread runs every connection through a selector (no thread per client), so an idle
or slow client costs one socket and nothing else. Limits that keep a device serving:

- a request must arrive within ``request_timeout_s``; at most ``max_pending``
  connections may be waiting to send one (a new one pushes the oldest out), so idle
  connections can neither exhaust file descriptors nor lock a real viewer out;
  (``max_pending`` is lowered to what the process's file-descriptor limit allows, after
  raising its soft limit towards the hard one);
- at most ``max_viewers`` streams (a 503 beyond them); a viewer that takes no data for
  ``send_timeout_s`` is dropped; a slow viewer skips frames instead of queueing them;
- each frame is sent as the same bytes to every viewer (encoded once, by the caller);
- the server and encoder threads run at a lower CPU priority (Linux: per-thread nice)
  than classification, so on a busy device viewers get fewer frames, not the loop;
- exact paths (``/`` and ``/stream``), GET and HEAD, 401 without the credentials that
  ``StreamAuth`` asks for, and resets or broken pipes closed quietly (no tracebacks).
"""

from __future__ import annotations

import errno
import logging
import os
import selectors
import socket
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit

from edgecls.errors import ConfigError, SourceError
from edgecls.live.serve_auth import StreamAuth

log = logging.getLogger(__name__)

BOUNDARY = b"frame"
_STREAM_TYPE = "multipart/x-mixed-replace; boundary=" + BOUNDARY.decode()
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            405: "Method Not Allowed", 431: "Request Header Fields Too Large", 503: "Service Unavailable"}
_PAGE = """<!doctype html><html><head><title>edgecls</title></head>
<body style="margin:0;background:#111"><img src="{src}" style="max-width:100%"></body></html>"""
Handler = Callable[[socket.socket, int], None]


@dataclass
class ServerLimits:
    """How much the server accepts; the defaults suit a device on a local network."""

    max_viewers: int = 10
    max_pending: int = 1024
    request_timeout_s: float = 10.0
    send_timeout_s: float = 10.0
    backlog: int = 128
    max_request_bytes: int = 8192


@dataclass
class _Pending:
    deadline: float
    data: bytearray


@dataclass
class _Outgoing:
    """Bytes on their way to one client: a viewer's stream, or a short reply then close."""

    out: memoryview | None
    last_progress: float
    viewer: bool
    seq: int = -1
    events: int = selectors.EVENT_READ


def frame_part(jpeg: bytes) -> bytes:
    """One JPEG as a part of the multipart stream (built once, sent to every viewer)."""
    return b"--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n" % (BOUNDARY, len(jpeg), jpeg)


class StreamServer:
    """Serves a page at ``/`` and a multipart stream at ``/stream`` of the parts given to ``publish``.

    Args:
        host: address or name to bind; a non-loopback one requires credentials (see ``StreamAuth``).
        port: 0..65535 (0 picks a free port).
        auth: the credentials policy; ``None`` means none asked for.
        limits: timeouts and caps.

    Raises:
        ConfigError: the port is out of range.
        SourceError: the address cannot be bound.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 8080, auth: StreamAuth | None = None,
                 limits: ServerLimits | None = None) -> None:
        self.limits = limits or ServerLimits()
        self._max_pending = _pending_budget(self.limits)
        self._listener = _bind(host, port, self.limits.backlog)
        address, bound_port = self._listener.getsockname()[:2]
        self.auth = (auth or StreamAuth()).for_address(address)
        self.url = f"http://{_display_host(host, address)}:{bound_port}/"
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        for sock in (self._wake_r, self._wake_w):
            sock.setblocking(False)
        self._selector.register(self._listener, selectors.EVENT_READ, self._accept)
        self._selector.register(self._wake_r, selectors.EVENT_READ, self._drain_wake)
        self._pending: OrderedDict[socket.socket, _Pending] = OrderedDict()
        self._outgoing: dict[socket.socket, _Outgoing] = {}
        self._latest: tuple[int, bytes | None] = (0, None)  # (sequence number, frame part)
        self._viewers = 0
        self._accept_paused_until = 0.0
        self._stopping = False
        self.counters = {"accepted": 0, "timed_out": 0, "evicted": 0, "rejected_busy": 0, "unauthorized": 0}
        self._thread = threading.Thread(target=self._serve, name="edgecls-serve", daemon=True)
        self._thread.start()

    @property
    def thread(self) -> threading.Thread:
        """The thread that serves every connection."""
        return self._thread

    @property
    def watch_url(self) -> str:
        """The URL to open in a browser (with the token when one is required)."""
        return self.url + (f"?token={quote(self.auth.token)}" if self.auth.token else "")

    @property
    def viewers(self) -> int:
        """Streams being served right now."""
        return self._viewers

    @property
    def frames_published(self) -> int:
        """How many frames ``publish`` has received."""
        return self._latest[0]

    def publish(self, part: bytes) -> None:
        """Makes ``part`` (see ``frame_part``) the newest frame; every viewer gets it when ready."""
        self._latest = (self._latest[0] + 1, part)  # one assignment: the server thread reads it whole
        self._wake()

    def close(self) -> None:
        """Stops serving and closes every connection."""
        self._stopping = True
        self._wake()
        self._thread.join(timeout=5.0)

    # -- the selector thread ------------------------------------------------------------

    def _serve(self) -> None:
        lower_thread_priority()
        fed = 0
        try:
            while not self._stopping:
                for key, events in self._selector.select(timeout=0.25):
                    self._dispatch(key, events)
                now = time.monotonic()
                if self._latest[0] != fed:
                    fed = self._latest[0]
                    for sock in [s for s, o in self._outgoing.items() if o.viewer and o.out is None]:
                        self._flush(sock, now)
                self._expire(now)
        finally:
            self._shutdown()

    def _dispatch(self, key: selectors.SelectorKey, events: int) -> None:
        """Runs one socket's handler; an unexpected error costs that connection, not the server."""
        try:
            key.data(key.fileobj, events)
        except Exception as exc:  # noqa: BLE001 - one client must never stop the stream for all
            log.warning("serve: dropped a connection after an unexpected error: %r", exc)
            if key.fileobj in self._pending or key.fileobj in self._outgoing:
                self._drop(key.fileobj)  # type: ignore[arg-type]

    def _accept(self, listener: socket.socket, events: int) -> None:
        for _ in range(64):  # a burst at a time, then serve the others
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._pause_accepting(exc)
                return
            sock.setblocking(False)
            if len(self._pending) >= self._max_pending:
                self._drop(next(iter(self._pending)), "evicted")
            self.counters["accepted"] += 1
            deadline = time.monotonic() + self.limits.request_timeout_s
            self._pending[sock] = _Pending(deadline, bytearray())
            self._selector.register(sock, selectors.EVENT_READ, self._read_request)

    def _pause_accepting(self, exc: OSError) -> None:
        """Out of file descriptors: free the oldest waiting connection and stop accepting briefly."""
        log.warning("serve: cannot accept a connection (%s); pausing for 0.5 s", exc.strerror)
        if exc.errno in (errno.EMFILE, errno.ENFILE) and self._pending:
            self._drop(next(iter(self._pending)), "evicted")
        self._selector.unregister(self._listener)
        self._accept_paused_until = time.monotonic() + 0.5

    def _read_request(self, sock: socket.socket, events: int) -> None:
        pending = self._pending[sock]
        try:
            chunk = sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._drop(sock)
            return
        pending.data += chunk
        end = pending.data.find(b"\r\n\r\n")
        if end < 0:
            if len(pending.data) > self.limits.max_request_bytes:
                self._answer(sock, 431, b"request too large\n")
            return
        self._route(sock, bytes(pending.data[:end]))

    def _route(self, sock: socket.socket, head: bytes) -> None:
        request = _parse_request(head)
        if request is None:
            self._answer(sock, 400, b"bad request\n")
            return
        method, target, headers = request
        url = urlsplit(target)
        head_only = method == "HEAD"
        if method not in ("GET", "HEAD"):
            self._answer(sock, 405, b"only GET and HEAD\n", {"Allow": "GET, HEAD"})
        elif not self.auth.allows(headers.get("authorization"), parse_qs(url.query).get("token", [])):
            self.counters["unauthorized"] += 1
            self._answer(sock, 401, b"a token or login is required\n",
                         {"WWW-Authenticate": self.auth.challenge()}, head_only)
        elif url.path == "/":
            src = "/stream" + (f"?token={quote(self.auth.token)}" if self.auth.token else "")
            self._answer(sock, 200, _PAGE.format(src=src).encode(), {"Content-Type": "text/html"}, head_only)
        elif url.path != "/stream":
            self._answer(sock, 404, b"not found\n", head_only=head_only)
        elif self.viewers >= self.limits.max_viewers:
            self.counters["rejected_busy"] += 1
            self._answer(sock, 503, b"too many viewers, try again later\n", {"Retry-After": "10"}, head_only)
        elif head_only:
            self._answer(sock, 200, b"", {"Content-Type": _STREAM_TYPE, "Cache-Control": "no-cache"}, True)
        else:
            self._start_stream(sock)

    def _answer(self, sock: socket.socket, status: int, body: bytes, headers: dict[str, str] | None = None,
                head_only: bool = False) -> None:
        fields = {"Content-Type": "text/plain; charset=utf-8", **(headers or {}),
                  "Content-Length": str(len(body)), "Connection": "close"}
        self._begin_output(sock, _status_head(status, fields) + (b"" if head_only else body), viewer=False)

    def _start_stream(self, sock: socket.socket) -> None:
        fields = {"Content-Type": _STREAM_TYPE, "Cache-Control": "no-cache, no-store", "Connection": "close"}
        self._viewers += 1
        self._begin_output(sock, _status_head(200, fields), viewer=True)

    def _begin_output(self, sock: socket.socket, data: bytes, viewer: bool) -> None:
        self._pending.pop(sock, None)
        self._selector.modify(sock, selectors.EVENT_READ, self._on_client_event)
        self._outgoing[sock] = _Outgoing(memoryview(data), time.monotonic(), viewer)
        self._flush(sock, time.monotonic())

    def _on_client_event(self, sock: socket.socket, events: int) -> None:
        if events & selectors.EVENT_READ and not self._read_and_discard(sock):
            self._drop(sock)
        elif events & selectors.EVENT_WRITE:
            self._flush(sock, time.monotonic())

    def _read_and_discard(self, sock: socket.socket) -> bool:
        """Reads what a client sends after its request; False when it has gone."""
        try:
            return bool(sock.recv(4096))
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False

    def _flush(self, sock: socket.socket, now: float) -> None:
        """Sends as much as the socket takes; a viewer then moves on to the newest frame."""
        state = self._outgoing.get(sock)
        if state is None:
            return
        while True:
            if state.out is None:
                if not state.viewer:
                    self._drop(sock)
                    return
                seq, part = self._latest
                if state.seq == seq or part is None:
                    break
                state.out, state.seq = memoryview(part), seq
            try:
                sent = sock.send(state.out)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._drop(sock)
                return
            state.last_progress = now
            state.out = state.out[sent:] if sent < len(state.out) else None
        wanted = selectors.EVENT_READ | (selectors.EVENT_WRITE if state.out is not None else 0)
        if wanted != state.events:
            state.events = wanted
            self._selector.modify(sock, wanted, self._on_client_event)

    def _expire(self, now: float) -> None:
        while self._pending:
            sock, pending = next(iter(self._pending.items()))
            if pending.deadline > now:
                break
            self._drop(sock, "timed_out")
        stalled = [s for s, o in self._outgoing.items()
                   if o.out is not None and now - o.last_progress > self.limits.send_timeout_s]
        for sock in stalled:
            self._drop(sock, "timed_out")
        if self._accept_paused_until and now >= self._accept_paused_until:
            self._accept_paused_until = 0.0
            self._selector.register(self._listener, selectors.EVENT_READ, self._accept)

    def _drop(self, sock: socket.socket, counter: str | None = None) -> None:
        if counter:
            self.counters[counter] += 1
        self._pending.pop(sock, None)
        if (state := self._outgoing.pop(sock, None)) is not None and state.viewer:
            self._viewers -= 1
        try:
            self._selector.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:  # buffer full (a wake-up is already pending) or closed
            pass

    def _drain_wake(self, sock: socket.socket, events: int) -> None:
        try:
            sock.recv(4096)
        except OSError:
            pass

    def _shutdown(self) -> None:
        for sock in [*self._pending, *self._outgoing]:
            self._drop(sock)
        self._selector.close()
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()


def lower_thread_priority(steps: int = 10) -> None:
    """Makes the calling thread nicer by ``steps`` (Linux, where nice is per thread;
    elsewhere it would slow the whole process, so nothing happens)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + steps))
    except OSError:
        pass


def _pending_budget(limits: ServerLimits, reserve: int = 128) -> int:
    """``max_pending``, within the file descriptors this process may open."""
    try:
        import resource
    except ImportError:  # not POSIX
        return limits.max_pending
    wanted = limits.max_pending + limits.max_viewers + reserve
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return limits.max_pending
    return max(16, min(limits.max_pending, soft - limits.max_viewers - reserve))


def _bind(host: str, port: int, backlog: int) -> socket.socket:
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"port {port} is out of range", "use a port from 1 to 65535, e.g. --port 8080")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise SourceError(f"cannot serve on {host!r}: {getattr(exc, 'strerror', None) or exc}",
                          "use an address of this machine, e.g. 127.0.0.1 or 0.0.0.0") from None
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(backlog)
    except OSError as exc:
        listener.close()
        raise SourceError(f"cannot serve on {host}:{port} ({exc.strerror})", "pick another --port") from None
    listener.setblocking(False)
    return listener


def _display_host(host: str, address: str) -> str:
    if address in ("0.0.0.0", "::"):
        return socket.gethostname()
    return f"[{address}]" if ":" in address else host


def _status_head(status: int, fields: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS[status]}", *(f"{k}: {v}" for k, v in fields.items()), "", ""]
    return "\r\n".join(lines).encode("latin-1")


def _parse_request(head: bytes) -> tuple[str, str, dict[str, str]] | None:
    """(method, target, lower-cased headers) of an HTTP/1.x request head, None if malformed."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1].startswith("/"):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            return None
        headers[name.strip().lower()] = value.strip()
    return parts[0], parts[1], headers
