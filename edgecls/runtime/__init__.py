"""The edge runtime: classify camera frames with LiteRT, ONNX Runtime or OpenVINO.

Needs numpy, OpenCV and one inference backend; never imports TensorFlow or Keras.

Example:
    from edgecls.runtime import Classifier
    clf = Classifier("model.tflite")
    clf.classify(frame_bgr)  # [("daisy", 0.93), ...]
"""

from edgecls.runtime.backends import BACKENDS, load_backend
from edgecls.runtime.base import Backend, BackendOptions
from edgecls.runtime.classifier import Classifier, read_labels
from edgecls.runtime.metadata import METADATA_KEY, ModelMetadata, Preprocessing
from edgecls.runtime.preprocess import prepare, read_image_bgr
from edgecls.runtime.tensors import TensorInfo

__all__ = [
    "BACKENDS", "Backend", "BackendOptions", "Classifier", "METADATA_KEY", "ModelMetadata",
    "Preprocessing", "TensorInfo", "load_backend", "prepare", "read_image_bgr", "read_labels",
]
