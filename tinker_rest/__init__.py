"""tinker-rest: a Python client for the Tinker REST API."""

from tinker_rest._version import __version__

__all__ = ["__version__"]
