"""Helpers that several test files share (pytest puts tests/ on the import path)."""


class StopAfter:
    """Stands in for the Ctrl-C handler: asks to stop after ``n`` training steps."""

    def __init__(self, n):
        self.n = n

    def __call__(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    @property
    def requested(self):
        self.n -= 1
        return self.n < 0
