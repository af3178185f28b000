"""The one exception the data package raises for anything wrong with data on disk."""


class DataError(Exception):
    """Missing, corrupt or wrongly formatted data.

    The message is one line that says what is wrong and what to do about it: the train
    command prints ``str(error)`` and exits with status 2, so a learner never has to read
    a traceback from ``gzip`` or ``struct`` to find out that a file is truncated.
    """
