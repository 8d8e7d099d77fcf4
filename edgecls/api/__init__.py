"""The Python API: a thin façade over the functions the CLI calls, one verb per command.

Reached through the top-level package (``edgecls.Run``, ``edgecls.check_data``,
``edgecls.benchmark``, ``edgecls.report``, ``edgecls.explain_images``,
``edgecls.tune_model``, ``edgecls.Classifier``), which imports each piece on first use so that ``import edgecls``
stays light. Modules: ``data`` (check), ``training`` (train), ``run`` (the Run class: evaluate,
export, prune, explain), ``benching`` (bench, report), ``tuning`` (tune), ``live`` (run: the
live loop, no TensorFlow), ``devices`` (deploy, collect over ssh), ``inspecting`` (inspect),
``catalog`` (targets, models), ``comparing`` (compare), ``reviewing`` (review), ``results`` (result objects that
render themselves in a notebook), ``options`` (help texts and defaults the CLI shares).
"""
