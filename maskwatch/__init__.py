"""maskwatch: face-mask compliance from camera feeds."""

__version__ = "0.1.0"
