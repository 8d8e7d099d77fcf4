"""The classification head every family puts on its backbone, and the wrapper layout.

A model built for transfer learning is laid out as::

    input (RGB 0..255) -> "backbone" (a keras.Model that normalizes inside)
      -> "head_pool" (GlobalAveragePooling2D) -> "head_dropout" -> "head_dense" (softmax)

Training freezes ``model.get_layer("backbone")`` for the first phase and unfreezes its
upper part for fine-tuning; export and pruning rely on the same names.
"""

from __future__ import annotations

BACKBONE = "backbone"
HEAD_LAYERS = ("head_pool", "head_dropout", "head_dense")


def attach_head(backbone, num_classes: int, dropout: float = 0.2, name: str = "classifier"):
    """Wraps ``backbone`` (a keras.Model mapping images to a feature map) with a new
    ``num_classes``-way softmax head.

    Args:
        backbone: model whose input is RGB 0..255 and whose output is (N, h, w, C)
            or (N, C) features; it is renamed to ``"backbone"``.
        num_classes: number of output classes.
        dropout: dropout rate before the dense layer.
        name: name of the returned model.

    Returns:
        A keras.Model from RGB 0..255 images to class probabilities.
    """
    import keras

    backbone.name = BACKBONE
    inputs = keras.Input(shape=backbone.input_shape[1:], name="image")
    # No training=False here: from scratch BatchNorm must learn its statistics; when
    # fine-tuning, training freezes BatchNorm layers (a frozen Keras 3 BatchNormalization
    # runs in inference mode), see edgecls.train.phases.
    features = backbone(inputs)
    if len(features.shape) == 4:
        features = keras.layers.GlobalAveragePooling2D(name="head_pool")(features)
    else:
        features = keras.layers.Identity(name="head_pool")(features)
    features = keras.layers.Dropout(dropout, name="head_dropout")(features)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="head_dense")(features)
    return keras.Model(inputs, outputs, name=name)
