"""Presentation shared by the command line and the Python API: rich progress bars that
draw on a terminal and inline in a notebook, and nothing into a log file.

With ``edgecls/cli`` the only room that imports rich (tests/test_layering.py); it sits
above the library layers (it shows their progress) and below ``edgecls.api`` and
``edgecls.cli``, which both use it.
"""
