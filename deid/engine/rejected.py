"""The engine's one exception: an instance that cannot be fully de-identified."""


class Rejected(Exception):
    """An instance that cannot be fully de-identified. The message names tags, never values."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
