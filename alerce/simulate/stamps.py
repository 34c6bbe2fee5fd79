"""Image cutouts (science, template, difference) and a fast gzipped-FITS writer.

:func:`make_stamps` draws three 63x63 float32 images consistent with a class: Gaussian PSF
point sources (FWHM ~2 px) and extended exponential host galaxies on a sky background with
Gaussian noise. The difference image is built from the same noise realizations
(``science - template``), plus a small PSF-mismatch residual of every static source.

:func:`fits_gz_bytes` writes a primary-HDU FITS file by hand (2880-byte header of 80-character
cards, ``BITPIX = -32``, big-endian data padded to 2880 bytes) and gzips it, which is far faster
than :mod:`astropy.io.fits` in the hot path; astropy reads the result back exactly. Pixel
values are truncated to 10 mantissa bits (:func:`quantize`), far below the noise.
"""

from __future__ import annotations

import zlib

import numpy as np

from alerce.simulate.classes import ALL_CLASSES, GROUP

STAMP_SIZE = 63
_BLOCK = 2880
#: Kinds of artifacts drawn for the ``bogus`` class.
ARTIFACTS = ("hot_pixel", "dipole", "bad_column", "cosmic_ray", "bad_subtraction")


def _card(key: str, value, comment: str = "") -> str:
    if isinstance(value, bool):
        v = ("T" if value else "F").rjust(20)
    elif isinstance(value, (int, np.integer)):
        v = str(int(value)).rjust(20)
    elif isinstance(value, float):
        v = repr(float(value)).upper().rjust(20)
    else:
        v = ("'" + str(value).replace("'", "''").ljust(8) + "'").ljust(20)
    card = f"{key:<8}= {v}"
    if comment:
        card += " / " + comment
    return card[:80].ljust(80)


def fits_header(shape: tuple[int, int], extra: dict | None = None) -> bytes:
    """Primary FITS header (padded to 2880 bytes) for a 2-D float32 image of ``shape``."""
    ny, nx = shape
    cards = [
        _card("SIMPLE", True, "conforms to FITS standard"),
        _card("BITPIX", -32, "array data type"),
        _card("NAXIS", 2, "number of array dimensions"),
        _card("NAXIS1", nx),
        _card("NAXIS2", ny),
    ]
    for k, v in (extra or {}).items():
        cards.append(_card(k.upper()[:8], v))
    cards.append("END".ljust(80))
    text = "".join(cards)
    text += " " * (-len(text) % _BLOCK)
    return text.encode("ascii")


_DEFAULT_HEADER = fits_header((STAMP_SIZE, STAMP_SIZE), {"ORIGIN": "alerce.simulate"})


def fits_bytes(image: np.ndarray, header: bytes | None = None) -> bytes:
    """Uncompressed FITS file bytes of a 2-D image (stored as big-endian float32)."""
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"FITS stamp must be a 2-D image, got shape {image.shape}")
    if header is None:
        header = (_DEFAULT_HEADER if image.shape == (STAMP_SIZE, STAMP_SIZE)
                  else fits_header(image.shape, {"ORIGIN": "alerce.simulate"}))
    data = image.astype(">f4", copy=False).tobytes()
    return header + data + b"\0" * (-len(data) % _BLOCK)


def fits_gz_bytes(image: np.ndarray, level: int = 1) -> bytes:
    """Gzipped FITS bytes of a 2-D image (deterministic: gzip mtime is 0).

    Parameters
    ----------
    image : ndarray
        2-D image, written as big-endian float32.
    level : int
        zlib compression level (1 is fast; noisy float images barely compress further).
        Run-length matching only (``Z_RLE``): on quantized noisy images it compresses almost
        as well as the default strategy in ~60 % of the time.
    """
    comp = zlib.compressobj(level, zlib.DEFLATED, 31, 9, zlib.Z_RLE)
    return comp.compress(fits_bytes(image)) + comp.flush()


def _gauss_psf(size: int, x0: float, y0: float, fwhm: float) -> np.ndarray:
    s = fwhm / 2.354820045
    ax = np.arange(size, dtype=np.float64)
    gx = np.exp(-0.5 * ((ax - x0) / s) ** 2)
    gy = np.exp(-0.5 * ((ax - y0) / s) ** 2)
    return np.outer(gy / gy.sum(), gx / gx.sum())


def _add_psf_local(img: np.ndarray, flux: float, x0: float, y0: float, fwhm: float,
                   half: int = 8) -> None:
    """Add a Gaussian point source of total ``flux`` inside a (2*half+1)^2 window."""
    size = img.shape[0]
    ix, iy = int(round(x0)), int(round(y0))
    xs = np.arange(max(ix - half, 0), min(ix + half + 1, size))
    ys = np.arange(max(iy - half, 0), min(iy + half + 1, size))
    if len(xs) == 0 or len(ys) == 0:
        return
    s = fwhm / 2.354820045
    gx = np.exp(-0.5 * ((xs - x0) / s) ** 2)
    gy = np.exp(-0.5 * ((ys - y0) / s) ** 2)
    norm = 2 * np.pi * s * s  # full-plane normalization: edge-clipped stars lose flux
    img[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1] += (flux / norm) * np.outer(gy, gx)


def _galaxy(size: int, x0: float, y0: float, re: float, ell: float, pa: float,
            fwhm: float) -> np.ndarray:
    ax = np.arange(size, dtype=np.float64)
    dx = ax[None, :] - x0
    dy = ax[:, None] - y0
    c, s = np.cos(pa), np.sin(pa)
    u = dx * c + dy * s
    v = (-dx * s + dy * c) / max(1.0 - ell, 0.2)
    # exponential disc, core softened by the seeing
    r = np.sqrt(u * u + v * v + (fwhm / 2.355) ** 2)
    img = np.exp(-1.678 * r / re)
    return img / img.sum()


def _line(size: int, x0: float, y0: float, length: float, angle: float,
          width: float = 0.6) -> np.ndarray:
    ax = np.arange(size, dtype=np.float64)
    dx = ax[None, :] - x0
    dy = ax[:, None] - y0
    c, s = np.cos(angle), np.sin(angle)
    along = dx * c + dy * s
    across = -dx * s + dy * c
    img = np.exp(-0.5 * (across / width) ** 2) * (np.abs(along) <= length / 2)
    tot = img.sum()
    return img / tot if tot > 0 else img


def make_stamps(
    class_name: str,
    rng: np.random.Generator,
    *,
    size: int = STAMP_SIZE,
    fwhm: float | None = None,
    diff_flux: float | None = None,
    ref_flux: float | None = None,
    host_flux: float | None = None,
    host_re: float | None = None,
    host_offset: tuple[float, float] | None = None,
    sky_sigma: float | None = None,
    artifact: str | None = None,
    n_field_stars: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw science, template and difference cutouts for one alert of a class.

    Every argument left to None is drawn from a class-typical distribution, so
    ``make_stamps("SNIa", rng)`` alone gives a plausible triplet. Fluxes are in DN (zero point
    ~26.3 mag: a 20th-magnitude source is ~330 DN).

    Parameters
    ----------
    class_name : str
        One of :data:`alerce.simulate.classes.ALL_CLASSES`.
    rng : numpy.random.Generator
        Random generator (the only source of randomness: same seed, same images).
    size : int
        Side of the square cutouts (63 for ZTF).
    fwhm : float, optional
        Science PSF FWHM [px] (template PSF is ~0.9 of it).
    diff_flux : float, optional
        Signed flux of the candidate in the difference image [DN].
    ref_flux : float, optional
        Flux of the point source under the candidate in the template (variable stars,
        nuclear sources, stars under bad subtractions) [DN].
    host_flux, host_re, host_offset : optional
        Host galaxy total flux [DN], exponential scale radius [px] and (dx, dy) offset from
        the candidate [px] (supernovae; AGN hosts are centred).
    sky_sigma : float, optional
        Per-pixel noise of the science image [DN].
    artifact : str, optional
        For ``bogus``: one of :data:`ARTIFACTS`.
    n_field_stars : int, optional
        Number of unrelated field stars in the cutouts.

    Returns
    -------
    science, template, difference : ndarray of float32, shape (size, size)

    Raises
    ------
    ValueError
        On an unknown class or artifact name.
    """
    if class_name not in GROUP:
        raise ValueError(f"unknown class {class_name!r}; known: {list(ALL_CLASSES)}")
    group = GROUP[class_name]
    c = (size - 1) / 2.0
    fwhm = float(rng.lognormal(np.log(2.0), 0.15)) if fwhm is None else float(fwhm)
    fwhm_t = fwhm * rng.uniform(0.8, 0.95)
    sky_sigma = float(rng.uniform(8.0, 16.0)) if sky_sigma is None else float(sky_sigma)
    sig_t = sky_sigma * rng.uniform(0.25, 0.45)
    sky_s = rng.uniform(100.0, 260.0)
    sky_t = rng.uniform(60.0, 200.0)
    x0 = c + rng.uniform(-0.5, 0.5)
    y0 = c + rng.uniform(-0.5, 0.5)
    if diff_flux is None:
        snr = rng.uniform(6.0, 40.0)
        diff_flux = snr * sky_sigma * 2.0 * np.sqrt(np.pi) * fwhm / 2.3548
        if group in ("Periodic", "Stochastic") and class_name != "CV/Nova" and rng.random() < 0.4:
            diff_flux = -diff_flux
    diff_flux = float(diff_flux)
    if ref_flux is None:
        if group == "Periodic" or class_name in ("YSO", "QSO", "Blazar", "AGN"):
            ref_flux = abs(diff_flux) * rng.uniform(1.5, 20.0)
        elif class_name == "CV/Nova":
            ref_flux = abs(diff_flux) * rng.uniform(0.0, 0.2)
        else:
            ref_flux = 0.0
    ref_flux = max(float(ref_flux), 0.0)
    if host_flux is None:
        if group == "Transient" and rng.random() < 0.85:
            host_flux = abs(diff_flux) * rng.uniform(0.5, 8.0)
        elif class_name == "AGN":
            host_flux = ref_flux * rng.uniform(0.5, 2.0)
        else:
            host_flux = 0.0
    host_flux = max(float(host_flux), 0.0)
    if host_re is None:
        host_re = rng.uniform(2.0, 6.0) if group == "Transient" else rng.uniform(1.5, 4.0)
    if host_offset is None:
        if group == "Transient":
            r, a = rng.uniform(1.0, 5.0), rng.uniform(0, 2 * np.pi)
            host_offset = (r * np.cos(a), r * np.sin(a))
        else:
            host_offset = (0.0, 0.0)

    noise = rng.standard_normal((2, size, size), dtype=np.float32)
    n_s = noise[0] * np.float32(sky_sigma)
    n_t = noise[1] * np.float32(sig_t)
    static_s = np.zeros((size, size))
    static_t = np.zeros((size, size))
    diff = np.zeros((size, size))
    mismatch = rng.uniform(0.01, 0.03)

    n_stars = int(rng.poisson(1.5)) if n_field_stars is None else int(n_field_stars)
    for _ in range(n_stars):
        sx, sy = rng.uniform(0, size - 1, 2)
        if abs(sx - c) < 4 and abs(sy - c) < 4:
            continue
        f = sky_sigma * 10 ** rng.uniform(1.0, 3.0)
        _add_psf_local(static_s, f, sx, sy, fwhm)
        _add_psf_local(static_t, f, sx, sy, fwhm_t)
        _add_psf_local(diff, mismatch * f, sx, sy, fwhm)
        _add_psf_local(diff, -mismatch * f, sx, sy, fwhm_t)

    psf_s = _gauss_psf(size, x0, y0, fwhm)
    if class_name == "bogus":
        art = artifact if artifact is not None else ARTIFACTS[rng.integers(len(ARTIFACTS))]
        if art not in ARTIFACTS:
            raise ValueError(f"unknown artifact {art!r}; known: {ARTIFACTS}")
        amp = abs(diff_flux)
        if art == "hot_pixel":
            hp = np.zeros((size, size))
            ix, iy = int(round(x0)), int(round(y0))
            hp[iy, ix] = amp * rng.uniform(0.5, 1.0)
            if rng.random() < 0.5:
                hp[iy, ix + 1] = amp * rng.uniform(0.2, 0.6)
            static_s += hp
            diff += hp
        elif art == "dipole":
            f = ref_flux if ref_flux > 0 else amp * rng.uniform(3.0, 15.0)
            pt = _gauss_psf(size, x0, y0, fwhm_t)
            static_s += f * psf_s
            static_t += f * pt
            d = rng.uniform(0.7, 1.8)
            a = rng.uniform(0, 2 * np.pi)
            diff += amp * (_gauss_psf(size, x0 + d * np.cos(a), y0 + d * np.sin(a), fwhm)
                           - _gauss_psf(size, x0 - d * np.cos(a), y0 - d * np.sin(a), fwhm))
        elif art == "bad_column":
            col = np.zeros((size, size))
            ix = int(round(x0)) + int(rng.integers(-1, 2))
            col[:, ix] = amp / size * rng.uniform(3.0, 8.0)
            static_s += col
            diff += col
        elif art == "cosmic_ray":
            cr = amp * _line(size, x0, y0, rng.uniform(4.0, 16.0), rng.uniform(0, np.pi))
            static_s += cr
            diff += cr
        else:  # bad_subtraction of a bright star
            f = ref_flux if ref_flux > 0 else amp * rng.uniform(20.0, 80.0)
            pt = _gauss_psf(size, x0, y0, fwhm_t)
            static_s += f * psf_s
            static_t += f * pt
            diff += rng.uniform(0.15, 0.5) * f * (psf_s - pt) + 0.3 * diff_flux * psf_s
    else:
        if ref_flux > 0 and class_name != "asteroid":
            pt = _gauss_psf(size, x0, y0, fwhm_t)
            static_s += ref_flux * psf_s
            static_t += ref_flux * pt
            diff += mismatch * ref_flux * (psf_s - pt)
        if host_flux > 0:
            hx, hy = x0 + host_offset[0], y0 + host_offset[1]
            ell, pa = rng.uniform(0.0, 0.6), rng.uniform(0, np.pi)
            gs = _galaxy(size, hx, hy, host_re, ell, pa, fwhm)
            gt = _galaxy(size, hx, hy, host_re, ell, pa, fwhm_t)
            static_s += host_flux * gs
            static_t += host_flux * gt
            diff += mismatch * host_flux * (gs - gt)
        static_s += diff_flux * psf_s
        diff += diff_flux * psf_s

    science = (static_s + sky_s).astype(np.float32) + n_s
    template = (static_t + sky_t).astype(np.float32) + n_t
    difference = diff.astype(np.float32) + (n_s - n_t)
    return quantize(science), quantize(template), quantize(difference)


#: Mantissa mask of :func:`quantize`: 10 explicit mantissa bits (relative step 2**-10).
_MANTISSA_MASK = np.uint32(0xFFFFE000)


def quantize(image: np.ndarray) -> np.ndarray:
    """Truncate float32 pixels to 10 mantissa bits (relative precision ~1e-3).

    Like the lossy quantization of ZTF's own image products (fpack), this keeps the
    quantization step far below the noise while letting gzip compress the cutouts well
    and fast. Returned in place as float32.
    """
    image = np.ascontiguousarray(image, dtype=np.float32)
    bits = image.view(np.uint32)
    bits &= _MANTISSA_MASK
    return image
