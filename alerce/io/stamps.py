"""Cutout images: gzipped (ZTF) or plain (LSST) FITS bytes -> arrays / HDU lists."""

from __future__ import annotations

import gzip
import io
import warnings
import zlib

import numpy as np
from astropy.io import fits

_GZIP_MAGIC = b"\x1f\x8b"


def _raw_fits(data: bytes) -> bytes:
    if data is None or len(data) == 0:
        raise ValueError("empty stamp")
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"corrupt gzipped stamp: {exc}") from None
    if not data.startswith(b"SIMPLE"):
        raise ValueError(f"stamp is not FITS (starts with {data[:8]!r})")
    return data


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
    with stamp_hdulist(data) as hdul:
        for hdu in hdul:
            if hdu.data is not None and np.ndim(hdu.data) == 2:
                return np.array(hdu.data, dtype=dtype)
    raise ValueError("FITS stamp has no 2-D image")
