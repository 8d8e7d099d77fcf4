"""The --serve HTTP server, real sockets on 127.0.0.1 only: exact paths, HEAD, the viewer
cap, timeouts, 1,000 idle connections, resets without tracebacks, tokens and basic auth,
and JPEG encoding at a capped rate in its own thread."""

from __future__ import annotations

import base64
import resource
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import cv2
import numpy as np
import pytest

from edgecls.errors import ConfigError
from edgecls.live.serve_auth import StreamAuth, is_loopback
from edgecls.live.server import ServerLimits, StreamServer
from edgecls.live.sinks import MjpegSink

RESULT = {"frame": 0, "label": "red", "score": 0.97, "topk": [["red", 0.97]], "latency_ms": 1.0}
TOKEN = "test-token-0123456789"


@contextmanager
def serving(auth: StreamAuth | None = None, fps: float = 50.0, noisy: bool = False,
            **limits: float) -> Iterator[MjpegSink]:
    """An MjpegSink on 127.0.0.1 fed frames by a thread, as the loop would: black
    160x120, or noisy 640x480 ones (large JPEGs)."""
    sink = MjpegSink("127.0.0.1", 0, auth=auth, max_fps=fps, limits=ServerLimits(**limits))  # type: ignore[arg-type]
    stop = threading.Event()

    def feed() -> None:
        rng = np.random.default_rng(0)
        frame = rng.integers(0, 256, (480, 640, 3), np.uint8) if noisy else np.zeros((120, 160, 3), np.uint8)
        while not stop.wait(0.005):
            sink.write(frame, RESULT, 200.0)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        yield sink
    finally:
        stop.set()
        feeder.join()
        sink.close()


def port_of(sink: MjpegSink) -> int:
    return int(sink.url.rsplit(":", 1)[1].strip("/"))


def send_request(port: int, target: str = "/", method: str = "GET", headers: dict[str, str] | None = None,
                 timeout: float = 5.0) -> tuple[socket.socket, int, dict[str, str], bytes]:
    """Sends a request; returns the socket, status, headers and the bytes read past them."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *fields = head.decode("latin-1").split("\r\n")
    parsed = {k.lower(): v.strip() for k, _, v in (f.partition(":") for f in fields)}
    return sock, int(status_line.split()[1]), parsed, rest


def fetch(port: int, target: str = "/", method: str = "GET",
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """A whole non-stream answer (the server closes after it)."""
    sock, status, fields, body = send_request(port, target, method, headers)
    with sock:
        while chunk := sock.recv(4096):
            body += chunk
    return status, fields, body


def read_jpeg(sock: socket.socket, data: bytes = b"") -> bytes:
    """The next JPEG of a multipart stream."""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    while len(rest) < length:
        rest += sock.recv(65536)
    return rest[:length]


def test_stream_serves_decodable_annotated_jpegs() -> None:
    with serving() as sink:
        sock, status, fields, rest = send_request(port_of(sink), "/stream")
        with sock:
            jpeg = read_jpeg(sock, rest)
        status_page, _, page = fetch(port_of(sink), "/")
    assert status == 200 and fields["content-type"].startswith("multipart/x-mixed-replace")
    assert rest.startswith(b"--frame") or rest == b""
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[:2] == (120, 160) and image.max() > 200  # the label was drawn on it
    assert status_page == 200 and b'<img src="/stream"' in page


def test_exact_paths_head_and_methods() -> None:
    with serving() as sink:
        port = port_of(sink)
        assert [fetch(port, path)[0] for path in ("/streamX", "/stream/", "/stream.jpg", "/index.html", "/x")] \
            == [404] * 5
        status, fields, body = fetch(port, "/", "HEAD")
        assert status == 200 and int(fields["content-length"]) > 0 and body == b""
        status, fields, body = fetch(port, "/stream", "HEAD")
        assert status == 200 and fields["content-type"].startswith("multipart/") and body == b""
        status, fields, _ = fetch(port, "/", "POST")
        assert status == 405 and fields["allow"] == "GET, HEAD"
        sock, status, _, rest = send_request(port, "/stream?anything=1")
        with sock:
            assert status == 200 and read_jpeg(sock, rest)


def test_viewer_cap_answers_503() -> None:
    with serving(max_viewers=2) as sink:
        port = port_of(sink)
        first, second = send_request(port, "/stream"), send_request(port, "/stream")
        assert first[1] == second[1] == 200
        status, fields, _ = fetch(port, "/stream")
        assert status == 503 and fields["retry-after"]
        first[0].close()
        for _ in range(100):  # the slot frees once the server sees the close
            status, _, _ = fetch(port, "/stream", "HEAD")
            if status == 200:
                break
            time.sleep(0.02)
        assert status == 200
        second[0].close()
        assert sink.server.counters["rejected_busy"] >= 1


def test_idle_connection_times_out() -> None:
    with serving(request_timeout_s=0.3) as sink:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port_of(sink)), timeout=5) as idle:
            idle.sendall(b"GET /stre")  # a request that never completes
            assert idle.recv(100) == b""  # closed by the server
        assert 0.25 < time.monotonic() - started < 2.0
        assert sink.server.counters["timed_out"] == 1


def test_stalled_viewer_is_dropped() -> None:
    with serving(send_timeout_s=0.5, fps=200, noisy=True) as sink:
        sock, status, _, _ = send_request(port_of(sink), "/stream")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        with sock:  # never reads: the server's send buffer fills, then it gives up
            deadline = time.monotonic() + 20
            while sink.server.viewers and time.monotonic() < deadline:
                time.sleep(0.05)
            assert status == 200 and sink.server.viewers == 0 and sink.server.counters["timed_out"] >= 1


def _allow_descriptors(count: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count:
        if hard != resource.RLIM_INFINITY and hard < count:
            pytest.skip(f"needs {count} file descriptors, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (count, hard))


def test_thousand_idle_connections_change_nothing() -> None:
    _allow_descriptors(2600)
    with serving(request_timeout_s=30.0) as sink:
        port = port_of(sink)
        idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(1000)]
        try:
            time.sleep(0.2)
            started = time.monotonic()
            sock, status, _, rest = send_request(port, "/stream")
            with sock:
                jpeg = read_jpeg(sock, rest)
            waited = time.monotonic() - started
            held = len(sink.server._pending)
        finally:
            for s in idle:
                s.close()
    assert status == 200 and jpeg.startswith(b"\xff\xd8") and waited < 2.0
    assert held <= ServerLimits().max_pending


def test_waiting_connections_are_capped_oldest_out() -> None:
    with serving(request_timeout_s=30.0, max_pending=50) as sink:
        port = port_of(sink)
        idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(200)]
        try:
            time.sleep(0.2)
            sock, status, _, rest = send_request(port, "/stream")
            with sock:
                assert status == 200 and read_jpeg(sock, rest)
            assert idle[0].recv(10) == b"" and len(sink.server._pending) <= 50  # the oldest went first
        finally:
            for s in idle:
                s.close()
    assert sink.server.counters["evicted"] >= 150


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # RST instead of FIN


def test_reset_connections_leave_no_traceback(capfd: pytest.CaptureFixture[str]) -> None:
    with serving() as sink:
        port = port_of(sink)
        for i in range(100):
            if i % 3 == 0:  # a viewer that vanishes mid-stream
                sock, _, _, _ = send_request(port, "/stream")
                sock.recv(1000)
            else:  # half a request, or a whole one whose answer is never read
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                sock.sendall(b"GET / HTTP/1.1\r\n" if i % 3 == 1 else b"GET /stream HTTP/1.1\r\n\r\n")
            _reset(sock)
        time.sleep(0.3)
        sock, status, _, rest = send_request(port, "/stream")
        with sock:
            assert status == 200 and read_jpeg(sock, rest)
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err and "Error" not in captured.err


def test_token_required_and_accepted() -> None:
    with serving(auth=StreamAuth.from_options(token=TOKEN)) as sink:
        port = port_of(sink)
        status, fields, _ = fetch(port, "/stream")
        assert status == 401 and fields["www-authenticate"].startswith("Bearer")
        assert fetch(port, "/stream?token=wrong-token-000")[0] == 401
        assert fetch(port, "/stream", headers={"Authorization": "Bearer wrong-token-000"})[0] == 401
        assert fetch(port, "/", "HEAD")[0] == 401
        status, _, page = fetch(port, f"/?token={TOKEN}")
        assert status == 200 and f'src="/stream?token={TOKEN}"'.encode() in page
        for target, headers in ((f"/stream?token={TOKEN}", None), ("/stream", {"Authorization": f"Bearer {TOKEN}"})):
            sock, status, _, rest = send_request(port, target, headers=headers)
            with sock:
                assert status == 200 and read_jpeg(sock, rest)
        assert sink.server.watch_url.endswith(f"/?token={TOKEN}")


def test_basic_auth() -> None:
    def basic(text: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(text.encode()).decode()}

    with serving(auth=StreamAuth.from_options(basic_auth="viewer:pass-word")) as sink:
        port = port_of(sink)
        status, fields, _ = fetch(port, "/")
        assert status == 401 and fields["www-authenticate"].startswith("Basic")
        assert fetch(port, "/", headers=basic("viewer:wrong"))[0] == 401
        assert fetch(port, "/", headers={"Authorization": "Basic %%%"})[0] == 401
        assert fetch(port, "/", headers=basic("viewer:pass-word"))[0] == 200


def test_auth_policy_off_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("127.8.9.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("::")
    assert not StreamAuth().for_address("127.0.0.1").required
    for address in ("0.0.0.0", "192.168.1.5", "::"):
        generated = StreamAuth().for_address(address)
        assert generated.required and generated.generated and len(generated.token or "") >= 20
        assert not generated.allows(None, []) and generated.allows(None, [generated.token or ""])
    assert StreamAuth().for_address("0.0.0.0").token != StreamAuth().for_address("0.0.0.0").token
    assert not StreamAuth.from_options(no_auth=True).for_address("0.0.0.0").required
    given = StreamAuth.from_options(token=TOKEN).for_address("0.0.0.0")
    assert given.token == TOKEN and not given.generated
    with pytest.raises(ConfigError, match="contradicts"):
        StreamAuth.from_options(token=TOKEN, no_auth=True)
    with pytest.raises(ConfigError, match="8 to 256"):
        StreamAuth.from_options(token="short")
    with pytest.raises(ConfigError, match="USER:PASSWORD"):
        StreamAuth.from_options(basic_auth="nopassword")


def test_port_out_of_range_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="out of range"):
        StreamServer("127.0.0.1", 70000)


def test_encoding_is_capped_and_only_while_watched() -> None:
    with serving(fps=10.0) as sink:
        time.sleep(0.3)
        assert sink.server.frames_published == 0  # nobody watching: nothing encoded
        sock, _, _, rest = send_request(port_of(sink), "/stream")
        with sock:
            read_jpeg(sock, rest)
            before = sink.server.frames_published
            time.sleep(1.0)
            published = sink.server.frames_published - before
    assert 5 <= published <= 12  # ~10 per second although ~200 frames a second were written


def test_server_off_loopback_requires_the_generated_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server as bound to a LAN address: tests only use 127.0.0.1, so the address
    check is told this one is not loopback."""
    from edgecls.live import serve_auth

    monkeypatch.setattr(serve_auth, "is_loopback", lambda address: False)
    with serving() as sink:
        auth, port = sink.server.auth, port_of(sink)
        assert auth.generated and auth.token and sink.server.watch_url.endswith(f"?token={auth.token}")
        assert fetch(port, "/stream")[0] == 401
        sock, status, _, rest = send_request(port, f"/stream?token={auth.token}")
        with sock:
            assert status == 200 and read_jpeg(sock, rest)
    with serving(auth=StreamAuth.from_options(no_auth=True)) as sink:
        assert not sink.server.auth.required and fetch(port_of(sink), "/")[0] == 200


def test_a_frame_that_cannot_be_encoded_does_not_end_the_stream() -> None:
    """Frames the encoder chokes on (here a result whose score is not a number) are skipped;
    the next good frame still reaches the viewer (before, the first one ended the encoder)."""
    sink = MjpegSink("127.0.0.1", 0, max_fps=50.0)
    try:
        sock, status, _, rest = send_request(port_of(sink), "/stream")
        with sock:
            deadline = time.monotonic() + 0.5  # the encoder runs at 50 FPS while a viewer watches
            while time.monotonic() < deadline:
                sink.write(np.zeros((120, 160, 3), np.uint8), {"label": "red", "score": "high"}, 10.0)
                time.sleep(0.02)
            stop = threading.Event()
            feeder = threading.Thread(target=lambda: [sink.write(np.zeros((120, 160, 3), np.uint8), RESULT, 10.0)
                                                      for _ in iter(lambda: stop.wait(0.01), True)], daemon=True)
            feeder.start()
            try:
                jpeg = read_jpeg(sock, rest)
            finally:
                stop.set()
                feeder.join()
    finally:
        sink.close()
    assert status == 200
    assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape[:2] == (120, 160)
