"""The one exception type that command lines turn into a one-line message and a non-zero exit."""


class UserError(Exception):
    """Bad input from the user: a missing or malformed file, an unknown name, a nonsense value.

    Raise it with a message that says what is wrong and, where it helps, what to do instead.
    Command lines catch it, print ``error: <message>`` and exit with status 2.
    """
