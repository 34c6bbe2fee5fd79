"""Errors raised by the decoding layer."""

from __future__ import annotations


class AlertDecodeError(ValueError):
    """A packet (or source) could not be decoded.

    Parameters
    ----------
    source : str
        Where the packet came from (file path, ``tarball::member``, URL, ``topic/partition/offset``).
    offset : int or None
        Byte offset inside the packet where decoding failed (None when not meaningful).
    reason : str
        Human-readable reason.
    """

    def __init__(self, source: str, offset: int | None, reason: str):
        self.source = source
        self.offset = offset
        self.reason = reason
        where = source if offset is None else f"{source} at byte offset {offset}"
        super().__init__(f"{where}: {reason}")

    @property
    def location(self) -> str:
        """``source`` or ``source:offset``, as used in dead letters."""
        return self.source if self.offset is None else f"{self.source}:{self.offset}"
