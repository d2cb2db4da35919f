"""Training recipes for Recombinator Networks (Honari et al., CVPR 2016 and CVPR 2018)."""

from realtime.core.signals import install_startup_hook as _install_startup_hook

_install_startup_hook()  # `python -m train...`: Ctrl-C during start-up prints one line, not a traceback
