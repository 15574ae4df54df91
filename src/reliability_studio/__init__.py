"""Reliability Studio: a reliability control plane for SRE and platform teams."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("reliability-studio")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
