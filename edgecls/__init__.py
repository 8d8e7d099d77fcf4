"""edgecls: folder of labelled images -> validated INT8 classifier on the edge.

This module imports nothing heavy: ``edgecls.runtime`` must stay importable on a
device that has numpy, OpenCV and one inference backend, and no TensorFlow.
"""

__version__ = "0.1.0"
