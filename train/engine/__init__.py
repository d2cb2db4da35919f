"""The one training loop (``loop``) and what drives it: configs, ``fit`` and ``adapt``, the
semi-supervised update (``semisup``), checkpoints, resume, run logs, the recipes' run helpers and export.
"""
