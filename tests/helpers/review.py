"""Inboxes of collected frames and a running review server, for the `edgecls review` tests."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgecls.review.heatmaps import HeatmapWorker
from edgecls.review.server import ReviewServer
from edgecls.review.session import ReviewSession
from edgecls.review.target import content_file_name

BGR = {"red": (0, 0, 255), "green": (0, 255, 0), "blue": (255, 0, 0)}


def frame_jpeg(color: str, seed: int) -> bytes:
    """A noisy pure-colour 48x64 JPEG (the seed makes each one different)."""
    rng = np.random.default_rng(seed)
    image = np.clip(np.asarray(BGR[color]) * 0.85 + rng.integers(0, 40, (48, 64, 3)), 0, 255).astype(np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


def write_inbox(folder: Path, frames: list[tuple[str, list[list[Any]]]], **sidecar: Any) -> list[str]:
    """Writes frames as `edgecls collect` does (``<hash>.jpg`` + sidecar with ``topk``); returns the
    names in the order given. ``frames``: (colour, top-k) each; ``sidecar``: extra fields for all."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for seed, (color, topk) in enumerate(frames):
        data = frame_jpeg(color, seed)
        name = content_file_name(data, ".jpg")
        (folder / name).write_bytes(data)
        record = {"topk": topk, "label": topk[0][0] if topk else None, "why": "top-1 under 0.5",
                  "collected": {"host": "pi@cam1"}, **sidecar}
        (folder / name).with_suffix(".json").write_text(json.dumps(record))
        names.append(name)
    return names


@contextmanager
def review_server(inbox: Path, dataset: Path, model: Path | None = None,
                  who: str = "tester") -> Iterator[ReviewServer]:
    """A review session served on loopback, closed afterwards."""
    session = ReviewSession(inbox, dataset, who)
    server = ReviewServer(session, heatmaps=HeatmapWorker(model) if model else None).start()
    try:
        yield server
    finally:
        server.close()
        session.close()


def call(server: ReviewServer, method: str, path: str, body: dict | None = None,
         headers: dict[str, str] | None = None, token: bool = True) -> tuple[int, Any]:
    """One request to the server (Bearer token unless ``token`` is False); (status, JSON or bytes)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    sent = {"Authorization": f"Bearer {server.token}"} if token else {}
    if body is not None:
        sent["Content-Type"] = "application/json"
    sent.update(headers or {})
    connection.request(method, path, json.dumps(body) if body is not None else None, sent)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    if response.getheader("Content-Type", "").startswith("application/json"):
        return response.status, json.loads(data)
    return response.status, data
