"""Model optimization: pruning a trained run into a smaller one.

``prune`` (magnitude, sparser weights) and ``structured`` (narrower blocks: ``selection``
picks the channels, ``channel_graph`` and ``reconstruct`` rebuild the model, ``refit``
repairs it, ``cost`` measures it) both implement the interface in ``finetune``, which
also fine-tunes and writes the pruned run; ``callbacks`` holds their Keras callbacks.
Validation of exported artifacts against the float model lives in ``edgecls.export.validate``.
"""
