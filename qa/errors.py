"""The one error type that reaches users: a message that says what to do next."""


class QAError(Exception):
    """An error whose message is fit to show a user, without a traceback."""

    exit_code = 1


class UsageError(QAError):
    """The user asked for something that cannot work as given (exit code 2)."""

    exit_code = 2
