"""The version of the signalbox-client distribution: its one source (read by the build and the SDK)."""

__version__ = "0.2.0"
