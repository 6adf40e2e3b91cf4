"""The structural diff of two policy documents: defined once in the client distribution
(`signalbox_client.diff`), which the `signalbox` CLI runs too, and re-exported here for the server."""

from signalbox_client.diff import document_diff

__all__ = ["document_diff"]
