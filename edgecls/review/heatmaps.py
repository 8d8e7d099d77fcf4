"""Heatmaps on demand: the explain code on a background thread, one frame at a time, cached.

The model (a run: Grad-CAM on its float model; an artifact: RISE through the runtime, no
TensorFlow) is loaded on the worker's first request, so the page opens at once. A request
for a frame not yet explained queues it and answers "pending"; the page asks again.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import OrderedDict
from pathlib import Path

from edgecls.errors import EdgeclsError
from edgecls.explain.api import explain_image, load_model, resolve_method
from edgecls.explain.heatmap import top_classes
from edgecls.explain.render import encode_png, model_row
from edgecls.runtime.preprocess import read_image_bgr

log = logging.getLogger(__name__)
CACHE_SIZE = 64


class HeatmapWorker:
    """Explains frames of ``model`` (a run, ``.keras`` or artifact path) on request."""

    def __init__(self, model: str | Path) -> None:
        self.model_path = Path(model)
        self.error: str | None = None  # the model could not be loaded: no heatmaps this session
        self._cache: OrderedDict[Path, bytes | str] = OrderedDict()  # PNG bytes, or why it failed
        self._queued: set[Path] = set()
        self._lock = threading.Lock()
        self._queue: queue.Queue[Path] = queue.Queue()
        threading.Thread(target=self._run, name="edgecls-review-heatmaps", daemon=True).start()

    def get(self, image: Path) -> bytes | str | None:
        """The PNG for ``image``, a reason it has none, or None while it is being made."""
        with self._lock:
            if self.error:
                return self.error
            if image in self._cache:
                self._cache.move_to_end(image)
                return self._cache[image]
            if image not in self._queued:
                self._queued.add(image)
                self._queue.put(image)
        return None

    def _run(self) -> None:
        model = None
        while True:
            image = self._queue.get()
            try:
                model = model or load_model(self.model_path)
                result: bytes | str = self._explain(model, image)
            except EdgeclsError as exc:
                if model is None:
                    with self._lock:
                        self.error = f"no heatmaps: {exc.message}"
                result = exc.message
            except Exception as exc:  # noqa: BLE001 -- one bad frame must not end the worker
                log.warning("heatmap of %s failed: %s", image, exc)
                result = f"heatmap failed: {type(exc).__name__}: {exc}"
            with self._lock:
                self._queued.discard(image)
                self._cache[image] = result
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)

    @staticmethod
    def _explain(model, image_path: Path) -> bytes:  # noqa: ANN001 -- an ExplainedModel
        image = read_image_bgr(image_path)
        probabilities = model.predict(model.prepare(image)[None])[0]
        explanations = explain_image(model, image, top_classes(probabilities, 1), resolve_method("auto", model))
        return encode_png(model_row(image, explanations, model.name))
