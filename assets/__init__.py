"""The shipped files, installed as the package ``realtime._assets`` (``pyproject.toml`` maps this
folder onto it). No code: this file makes the folder a regular package, which an editable install
needs in order to import a mapped folder; ``realtime.core.assets`` is the module that gives the paths."""
