"""The live application behind ``edgecls run``: frame sources, the loop, smoothing, sinks,
the MJPEG server and its auth, clean stops on signals.

It sits above the inference engine (``edgecls.runtime``) and, like it, never imports
TensorFlow or Keras: it runs on the device.
"""
