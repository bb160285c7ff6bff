"""The one error a user sees without a traceback."""


class InputError(ValueError):
    """A problem with the user's data or options: reported as one message that says what to change, no traceback."""
