"""Runs inside the MediaPipe virtualenv (see ``mediapipe_env.py``); imports no edgecls.

Reads a JSON request on stdin, prints one JSON line:
- ``classify``: {"models": [...], "images": [...]} -> per model, MediaPipe's
  ``vision.ImageClassifier`` result (top category per image, every category name seen)
  or the error it raised while loading.
- ``read``: {"models": [...]} -> per model, the standard metadata as read by the
  flatc-generated reader that ships in the MediaPipe wheel (a second, independent reader).
"""

from __future__ import annotations

import io
import json
import sys
import zipfile

import numpy as np


def classify(models: list[str], images: list[str]) -> dict:
    import cv2
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    out = {}
    for model in models:
        options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=model))
        try:
            classifier = vision.ImageClassifier.create_from_options(options)
        except Exception as exc:  # noqa: BLE001 - the test reports what MediaPipe says
            out[model] = {"error": str(exc)}
            continue
        top, names = [], set()
        for path in images:
            rgb = cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb)))
            categories = result.classifications[0].categories
            names.update(c.category_name for c in categories)
            top.append([categories[0].category_name, float(categories[0].score),
                        float(categories[1].score) if len(categories) > 1 else 0.0])
        classifier.close()
        out[model] = {"top": top, "names": sorted(n if n is not None else "<None>" for n in names)}
    return out


def read(models: list[str]) -> dict:
    from mediapipe.tasks.metadata import metadata_schema_py_generated as meta_fb
    from mediapipe.tasks.metadata import schema_py_generated as model_fb

    out = {}
    for path in models:
        with open(path, "rb") as handle:
            data = handle.read()
        model = model_fb.Model.GetRootAs(data, 0)
        entries = {model.Metadata(i).Name().decode(): model.Metadata(i).Buffer()
                   for i in range(model.MetadataLength())}
        buffer = model.Buffers(entries["TFLITE_METADATA"]).DataAsNumpy().tobytes()
        root = meta_fb.ModelMetadata.GetRootAs(buffer, 0)
        graph = root.SubgraphMetadata(0)
        image, scores = graph.InputTensorMetadata(0), graph.OutputTensorMetadata(0)
        props = meta_fb.ImageProperties()
        props.Init(image.Content().ContentProperties().Bytes, image.Content().ContentProperties().Pos)
        normalization = None
        for i in range(image.ProcessUnitsLength()):
            unit = image.ProcessUnits(i)
            if unit.OptionsType() == meta_fb.ProcessUnitOptions.NormalizationOptions:
                options = meta_fb.NormalizationOptions()
                options.Init(unit.Options().Bytes, unit.Options().Pos)
                normalization = [options.MeanAsNumpy().tolist(), options.StdAsNumpy().tolist()]
        label_file = scores.AssociatedFiles(0)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            labels = archive.read(label_file.Name().decode()).decode().splitlines()
        out[path] = {
            "identifier": meta_fb.ModelMetadata.ModelMetadataBufferHasIdentifier(buffer, 0),
            "name": root.Name().decode(), "min_parser_version": root.MinParserVersion().decode(),
            "entries": sorted(entries), "inputs": graph.InputTensorMetadataLength(),
            "outputs": graph.OutputTensorMetadataLength(),
            "content_type": image.Content().ContentPropertiesType(),
            "image_properties": meta_fb.ContentProperties.ImageProperties,
            "color_space_rgb": props.ColorSpace() == meta_fb.ColorSpaceType.RGB,
            "default_size": [props.DefaultSize().Height(), props.DefaultSize().Width()],
            "normalization": normalization, "label_file": label_file.Name().decode(),
            "label_file_type_is_axis_labels":
                label_file.Type() == meta_fb.AssociatedFileType.TENSOR_AXIS_LABELS,
            "labels": labels,
        }
    return out


if __name__ == "__main__":
    request = json.loads(sys.stdin.read())
    command = sys.argv[1]
    result = classify(request["models"], request["images"]) if command == "classify" else read(request["models"])
    sys.stdout.write("\n" + json.dumps(result) + "\n")
