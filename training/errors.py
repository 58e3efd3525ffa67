"""The one error type of the training job: bad data, bad options, missing files (one line each)."""


class TrainingError(RuntimeError):
    """A problem the user can fix; the message is one line."""
