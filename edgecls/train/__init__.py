"""Training and evaluation: ``config`` (TrainConfig), ``model_choice`` (model and weights
when the config leaves them open), ``phases`` (what trains when), ``optimizer``, ``losses``,
``fit`` (the loop; progress is drawn by a callback ``edgecls.present.train_progress`` hands in),
``feature_cache`` (the frozen-backbone phase on cached features), ``distribute``,
``checkpoint`` (resumable state), ``evaluate`` (reports on a split; the metrics themselves
are ``edgecls.metrics``), ``plots``.

Importing this package does not import TensorFlow; ``fit`` and ``evaluate`` do when called.
"""
