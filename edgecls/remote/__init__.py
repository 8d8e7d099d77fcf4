"""Devices over ssh: bench, run and deploy on remote Raspberry Pis, Jetsons or any Linux box.

Modules, lowest first: ``host`` (host specs), ``ssh`` (the system OpenSSH client as the
transport), ``parallel`` (one thread and one status per host), ``sync`` (copy what changed),
``wheels`` + ``device`` (find or prepare a Python environment there), ``artifacts`` and
``sample`` (what travels), then one module per command: ``bench``, ``live`` (run) and
``deploy``. The runtime never imports this package.
"""
