"""Cutout images: gzipped (ZTF) or plain (LSST) FITS bytes -> arrays / HDU lists.

:func:`decode_stamp` parses the simple case itself -- a primary HDU holding a 2-D image, read
from its 2880-byte header cards (``BITPIX``, ``NAXIS``, ``NAXIS1/2``, ``BZERO``, ``BSCALE``) with
a big-endian ``numpy.frombuffer`` -- which is what every ZTF cutout is, and is ~10x faster than
astropy. Anything else (image in an extension as in LSST cutouts, ``BLANK`` integers, truncated
data, unreadable cards) goes through astropy (:func:`stamp_hdulist`), so results are identical.
"""

from __future__ import annotations

import gzip
import io
import warnings
import zlib

import numpy as np
from astropy.io import fits

_GZIP_MAGIC = b"\x1f\x8b"


_BLOCK = 2880
_CARD = 80
#: numpy big-endian dtype of each FITS BITPIX.
_BITPIX_DTYPES = {8: np.dtype("u1"), 16: np.dtype(">i2"), 32: np.dtype(">i4"),
                  64: np.dtype(">i8"), -32: np.dtype(">f4"), -64: np.dtype(">f8")}


def _gunzip(data: bytes) -> bytes:
    # one zlib call for the usual single-member gzip; gzip.decompress for anything else
    # (several members, trailing data) so that its behaviour, and its errors, are kept
    dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = dec.decompress(data)
    except zlib.error:
        out, dec = b"", None
    if dec is not None and dec.eof and not dec.unused_data:
        return out
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"corrupt gzipped stamp: {exc}") from None


def _raw_fits(data: bytes) -> bytes:
    if data is None or len(data) == 0:
        raise ValueError("empty stamp")
    if data[:2] == _GZIP_MAGIC:
        data = _gunzip(data)
    if not data.startswith(b"SIMPLE"):
        raise ValueError(f"stamp is not FITS (starts with {data[:8]!r})")
    return data


def _header_cards(raw: bytes) -> tuple[dict[str, bytes], int] | None:
    """Primary-header ``keyword -> raw value`` and the data offset, or None when unusual."""
    cards: dict[str, bytes] = {}
    for block in range(0, len(raw) - _BLOCK + 1, _BLOCK):
        for pos in range(block, block + _BLOCK, _CARD):
            card = raw[pos:pos + _CARD]
            key = card[:8].rstrip()
            if key == b"END":
                return cards, block + _BLOCK
            if card[8:10] == b"= ":
                value = card[10:]
                if value.lstrip()[:1] != b"'":  # numbers / logicals: drop the comment
                    value = value.split(b"/", 1)[0]
                try:
                    cards[key.decode("ascii")] = value.strip()
                except UnicodeDecodeError:
                    return None
    return None  # no END card


def _primary_image(raw: bytes) -> np.ndarray | None:
    """Big-endian view of a plain 2-D primary image, or None (then astropy decodes it).

    Only the common case is handled: ``SIMPLE = T``, known ``BITPIX``, ``NAXIS = 2``, both axes
    positive, no scaling (``BSCALE``/``BZERO`` absent or 1/0), no ``BLANK``/``GROUPS``, and the
    whole data array present. Astropy's rules for scaled data (unsigned integers, float32 vs
    float64 results) are therefore never re-implemented.
    """
    parsed = _header_cards(raw)
    if parsed is None:
        return None
    cards, start = parsed
    try:
        if cards.get("SIMPLE") != b"T" or cards.get("NAXIS") != b"2" or "BLANK" in cards \
                or "GROUPS" in cards:
            return None
        dtype = _BITPIX_DTYPES.get(int(cards["BITPIX"]))
        nx, ny = int(cards["NAXIS1"]), int(cards["NAXIS2"])
        bscale = float(cards.get("BSCALE", b"1").replace(b"D", b"E"))
        bzero = float(cards.get("BZERO", b"0").replace(b"D", b"E"))
    except (KeyError, ValueError):
        return None
    if dtype is None or nx <= 0 or ny <= 0 or start + nx * ny * dtype.itemsize > len(raw) \
            or bscale != 1.0 or bzero != 0.0:
        return None
    return np.frombuffer(raw, dtype=dtype, count=nx * ny, offset=start).reshape(ny, nx)


def stamp_hdulist(data: bytes) -> fits.HDUList:
    """Open a cutout (gzip-compressed or plain FITS bytes) as an astropy ``HDUList`` in memory."""
    raw = _raw_fits(data)
    try:
        with warnings.catch_warnings():  # ZTF cutouts have slightly non-standard SIMPLE cards
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            hdul = fits.open(io.BytesIO(raw), memmap=False)
            hdul.verify("silentfix")
        return hdul
    except Exception as exc:
        raise ValueError(f"unreadable FITS stamp: {exc}") from None


def decode_stamp(data: bytes, dtype: np.dtype | type = np.float32) -> np.ndarray:
    """Decode a cutout into a 2-D native-endian float array.

    Parameters
    ----------
    data : bytes
        ZTF gzipped FITS or LSST plain FITS (the image is the first HDU with 2-D data).
    dtype : numpy dtype
        Output dtype (float32 by default, the cutouts' own precision).

    Raises
    ------
    ValueError
        Empty, non-FITS, corrupt, or no 2-D image.
    """
    raw = _raw_fits(data)
    fast = _primary_image(raw)
    if fast is not None:
        return fast.astype(dtype)  # a copy: native byte order, detached from ``raw``
    with warnings.catch_warnings():  # astropy's chatter; failures still raise ValueError
        warnings.simplefilter("ignore")
        return _decode_with_astropy(raw, dtype)


def _decode_with_astropy(raw: bytes, dtype: np.dtype | type) -> np.ndarray:
    with stamp_hdulist(raw) as hdul:
        for i, hdu in enumerate(hdul):
            try:
                data = hdu.data
            except Exception as exc:  # astropy reads the data lazily: truncated arrays fail here
                raise ValueError(f"unreadable FITS stamp data in HDU {i} "
                                 f"({type(exc).__name__}: {exc})") from None
            if data is not None and np.ndim(data) == 2:
                return np.array(data, dtype=dtype)
    raise ValueError("FITS stamp has no 2-D image")
