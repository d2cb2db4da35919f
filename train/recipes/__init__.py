"""The reproduction recipes' library parts (their command lines are ``train.reproduce`` and the
other top-level modules).
"""
