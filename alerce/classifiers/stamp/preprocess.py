"""Cutout preprocessing (reference 4.1): decode, stack, drop misshaped, crop, normalize.

Images are kept channels-first, ``(n, 3, 21, 21)`` float32, channels ``[science, template,
difference]``.
"""

from __future__ import annotations

import gzip
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alerce.classifiers.stamp.constants import CROP_SIZE, CROP_START, STAMP_SIZE

#: Cutout columns of the ``stamps`` frame, in channel order.
CHANNELS: tuple[str, ...] = ("science", "template", "difference")


def _decode_fits_gz(data: bytes) -> np.ndarray:
    """Private fallback decoder: gzipped (or plain) FITS bytes -> primary HDU data as float32."""
    from astropy.io import fits

    raw = bytes(data)
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    with fits.open(io.BytesIO(raw), memmap=False) as hdul:
        arr = hdul[0].data
        if arr is None:
            raise ValueError("FITS primary HDU has no data")
        return np.asarray(arr, dtype=np.float32)


def _resolve_decoder() -> Callable[[bytes], np.ndarray]:
    """``alerce.io.stamps.decode_stamp`` when it exists, else the private FITS helper."""
    try:
        from alerce.io.stamps import decode_stamp  # type: ignore[attr-defined]
    except Exception:  # the io module is written in parallel; fall back until it lands
        return _decode_fits_gz
    return decode_stamp


def decode_cutout(data: bytes | None, decoder: Callable[[bytes], np.ndarray] | None = None
                  ) -> tuple[np.ndarray | None, str | None]:
    """Decode one cutout, never raising.

    Parameters
    ----------
    data : bytes, dict or None
        Gzipped FITS bytes, or an Avro/Parquet ``{"stampData": ...}`` record.
    decoder : callable, optional
        Bytes -> 2-D array; defaults to ``alerce.io.stamps.decode_stamp``.

    Returns
    -------
    (array, None) on success or (None, reason) when the cutout is missing or undecodable.
    """
    if data is None or (isinstance(data, float) and np.isnan(data)):
        return None, "missing cutout"
    if isinstance(data, dict):  # Avro/Parquet record {"fileName", "stampData"}
        data = data.get("stampData")
        if data is None:
            return None, "missing cutout"
    try:
        arr = np.asarray((decoder or _resolve_decoder())(data), dtype=np.float32)
    except Exception as exc:  # noqa: BLE001 - any decoding failure becomes a reason
        return None, f"undecodable cutout ({type(exc).__name__}: {exc})"
    return arr, None


def crop_center(images: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """Centre crop of ``(n, c, 63, 63)`` images to ``(n, c, size, size)`` (indices 21..41 for 21)."""
    start = (images.shape[-1] - size) // 2
    return images[..., start:start + size, start:start + size]


def normalize_per_image(images: np.ndarray) -> np.ndarray:
    """Per-sample, per-channel min-max to [0, 1], then NaN -> 0 (reference 4.1 steps 5-6).

    ``x <- (x - nanmin(x)) / nanmax(x - nanmin(x))``; constant or all-NaN channels give 0.
    """
    x = np.asarray(images, dtype=np.float32)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        shifted = x - np.nanmin(x, axis=(-2, -1), keepdims=True)
        out = shifted / np.nanmax(shifted, axis=(-2, -1), keepdims=True)
    out[~np.isfinite(out)] = 0.0
    return out.astype(np.float32, copy=False)


@dataclass
class PreprocessedStamps:
    """Result of :func:`preprocess_stamps`.

    Attributes
    ----------
    images : ndarray, shape (n_kept, 3, 21, 21), float32
    kept : ndarray of int
        Row positions (in the input ``stamps`` frame) of the kept samples, aligned with ``images``.
    dropped : DataFrame
        ``oid, candid, reason`` for every dropped row (missing, undecodable or not 63x63x3).
    """

    images: np.ndarray
    kept: np.ndarray
    dropped: pd.DataFrame


def _decode_rows(columns: list[np.ndarray], decoder: Callable[[bytes], np.ndarray],
                 raw: np.ndarray, ok: np.ndarray, reasons: list[str | None]) -> None:
    """Fill ``raw[i, ch]`` for every row; mark failures in ``ok`` / ``reasons`` (in place)."""
    for i in range(len(raw)):  # one FITS decode per cutout is unavoidable; the math is vectorized
        for ch, col in enumerate(columns):
            arr, reason = decode_cutout(col[i], decoder)
            if reason is None and arr.shape != (STAMP_SIZE, STAMP_SIZE):
                reason = f"misshaped {CHANNELS[ch]} cutout {arr.shape} (expected 63x63)"
            if reason is not None:
                ok[i] = False
                reasons[i] = f"{CHANNELS[ch]}: {reason}" if "misshaped" not in reason else reason
                break
            raw[i, ch] = arr


def stack_cutouts(stamps: pd.DataFrame) -> PreprocessedStamps:
    """Decode and stack ``[science, template, difference]`` into raw ``(n, 3, 63, 63)`` arrays.

    Samples not shaped 63x63x3 are dropped with a reason (``image_clean_misshaped``).
    """
    n = len(stamps)
    columns = [stamps[c].to_numpy(dtype=object) if c in stamps else np.full(n, None, dtype=object)
               for c in CHANNELS]
    oid = stamps["oid"].to_numpy() if "oid" in stamps else np.full(n, None)
    candid = stamps["candid"].to_numpy() if "candid" in stamps else np.full(n, None)
    return stack_cutout_columns(columns, oid, candid)


def stack_cutout_columns(columns: list[np.ndarray], oid: np.ndarray, candid: np.ndarray
                         ) -> PreprocessedStamps:
    """:func:`stack_cutouts` on plain arrays (no DataFrame in the per-batch path).

    Parameters
    ----------
    columns : list of 3 object arrays
        Cutout bytes of the science, template and difference channels, aligned.
    oid, candid : arrays
        Keys of the rows, used for the ``dropped`` frame only.
    """
    n = len(columns[0])
    raw = np.empty((n, 3, STAMP_SIZE, STAMP_SIZE), dtype=np.float32)
    ok = np.ones(n, dtype=bool)
    reasons: list[str | None] = [None] * n
    decoder = _resolve_decoder()
    with warnings.catch_warnings():  # astropy's FITS verification chatter on unusual cutouts
        warnings.simplefilter("ignore")
        _decode_rows(columns, decoder, raw, ok, reasons)
    if ok.all():
        return PreprocessedStamps(images=raw, kept=np.arange(n),
                                  dropped=pd.DataFrame({"oid": oid[:0], "candid": candid[:0],
                                                        "reason": np.array([], dtype=object)}))
    kept = np.flatnonzero(ok)
    bad = np.flatnonzero(~ok)
    dropped = pd.DataFrame({
        "oid": np.asarray(oid)[bad],
        "candid": np.asarray(candid)[bad],
        "reason": [reasons[i] for i in bad],
    })
    return PreprocessedStamps(images=raw[kept], kept=kept, dropped=dropped)


def preprocess_images(raw: np.ndarray) -> np.ndarray:
    """Raw ``(n, 3, 63, 63)`` stacks -> model images ``(n, 3, 21, 21)`` (crop, normalize, NaN->0)."""
    raw = np.asarray(raw, dtype=np.float32)
    if raw.ndim != 4 or raw.shape[1:] != (3, STAMP_SIZE, STAMP_SIZE):
        raise ValueError(f"expected images of shape (n, 3, 63, 63), got {raw.shape}")
    return normalize_per_image(crop_center(raw, CROP_SIZE))


def preprocess_stamps(stamps: pd.DataFrame) -> PreprocessedStamps:
    """``stamps`` frame (``oid, candid, science, template, difference`` bytes) -> model images.

    Parameters
    ----------
    stamps : DataFrame
        The ``stamps`` frame of :class:`alerce.batch.AlertBatch`; cutouts as gzipped FITS bytes
        (Avro-style ``{"stampData": ...}`` dicts are accepted too).

    Returns
    -------
    PreprocessedStamps
        Images of the kept rows plus the dropped rows with their reason.
    """
    stacked = stack_cutouts(stamps)
    stacked.images = preprocess_images(stacked.images)
    return stacked


__all__ = [
    "CHANNELS", "PreprocessedStamps", "crop_center", "decode_cutout", "normalize_per_image",
    "preprocess_images", "preprocess_stamps", "stack_cutout_columns", "stack_cutouts", "CROP_START",
]
