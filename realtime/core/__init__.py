"""The layer everything stands on: one-line errors, stop signals, atomic writes, output checks,
argument types, every shipped file and cache path, machine and timing. Imports the standard
library and numpy only.
"""
