"""Datasets: scan a folder per class, check it, split it, and feed it to training.

``scan`` finds files, ``check`` decides which are usable, ``split`` assigns them to
train/val/test deterministically, ``pipeline`` turns them into tf.data input.
Only ``pipeline`` and ``augment`` import TensorFlow.
"""
