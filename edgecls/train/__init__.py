"""Training and evaluation: ``config`` (TrainConfig), ``phases`` (what trains when),
``fit`` (the loop), ``checkpoint`` (resumable state), ``progress`` (rich bars),
``metrics`` (numpy classification metrics), ``evaluate`` (reports on a split).

Importing this package does not import TensorFlow; ``fit`` and ``evaluate`` do when called.
"""
