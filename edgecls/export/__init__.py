"""Export: a trained Keras model -> TFLite / ONNX / OpenVINO artifacts, each carrying
its metadata and validated against the float model (``pipeline.export_run``)."""
