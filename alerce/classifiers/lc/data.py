"""Training data of the light-curve classifier: real labelled curves and simulations.

Every loader returns ``(detections, non_detections, labels)`` with ALeRCE detection-table
columns (see :func:`detections_from_long_table`) and ``labels = oid, class, source``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from alerce.classifiers.labels import ALERCE_RULES, BTS_RULES, map_classes

__all__ = ["detections_from_long_table", "load_bts", "load_periodic_history", "load_simulated",
           "load_alerce_sne", "ALERCE_EXAMPLES_DIR",
           "SHARED_DATA", "BTS_DIR", "PERIODIC_DIR", "NON_DETECTION_FRAME_COLUMNS"]

SHARED_DATA = Path("/work/shared/data")
BTS_DIR = SHARED_DATA / "lightcurves" / "bts_2710_labeled"
PERIODIC_DIR = SHARED_DATA / "lightcurves" / "alerce_lc_classifier_history"
NON_DETECTION_FRAME_COLUMNS = ("oid", "fid", "mjd", "diffmaglim")
ALERCE_EXAMPLES_DIR = SHARED_DATA / "golden" / "alerce_lc_classifier" / "data_examples"
_BAND_FID = {"g": 1, "r": 2, "R": 2, "i": 3, "ztfg": 1, "ztfr": 2, "ztfi": 3}


def detections_from_long_table(table: pd.DataFrame, *, oid: str = "oid", mjd: str = "mjd",
                               band: str = "band", mag: str = "mag", magerr: str = "magerr",
                               positions: pd.DataFrame | None = None) -> pd.DataFrame:
    """ALeRCE-style detections from a plain ``(oid, mjd, band, mag, magerr)`` table.

    ``magpsf = mag``, ``sigmapsf = magerr``, ``corrected = False``, ``isdiffpos = 1``,
    ``rb = 1``, ``candid`` a running number and ``ra, dec`` from ``positions`` (``oid``
    index, ``ra``, ``dec`` columns) or 0. Bands: ``g``, ``r``/``R``, ``i`` (ZTF fid 1, 2, 3);
    rows of other bands are dropped.
    """
    fid = table[band].astype(str).map(_BAND_FID)
    keep = fid.notna().to_numpy()
    t = table[keep]
    oids = t[oid].astype(str).to_numpy(dtype=object)
    n = len(t)
    ra = np.zeros(n)
    dec = np.zeros(n)
    if positions is not None and len(positions):
        pos = positions.reindex(pd.Index(oids))
        ra = pos["ra"].fillna(0.0).to_numpy(dtype=np.float64)
        dec = pos["dec"].fillna(0.0).to_numpy(dtype=np.float64)
    mags = t[mag].to_numpy(dtype=np.float64)
    errs = t[magerr].to_numpy(dtype=np.float64)
    return pd.DataFrame({
        "oid": pd.array(oids, dtype=object),
        "candid": np.arange(1, n + 1, dtype=np.int64),
        "mjd": t[mjd].to_numpy(dtype=np.float64),
        "fid": fid[keep].to_numpy(dtype=np.int64),
        "magpsf": mags,
        "sigmapsf": errs,
        "magpsf_corr": mags,
        "sigmapsf_corr": errs,
        "sigmapsf_corr_ext": errs,
        "corrected": np.zeros(n, dtype=bool),
        "dubious": np.zeros(n, dtype=bool),
        "isdiffpos": np.ones(n, dtype=np.int8),
        "rb": np.ones(n),
        "ra": ra,
        "dec": dec,
    })


def _empty_non_detections() -> pd.DataFrame:
    return pd.DataFrame({"oid": pd.Series(dtype=object), "fid": pd.Series(dtype=np.int64),
                         "mjd": pd.Series(dtype=np.float64),
                         "diffmaglim": pd.Series(dtype=np.float64)})


def _sexagesimal(ra: pd.Series, dec: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Degrees from ``hh:mm:ss`` / ``+dd:mm:ss`` strings (NaN where unparsable)."""
    def parts(s: pd.Series) -> np.ndarray:
        sp = s.astype(str).str.strip().str.split(":", expand=True)
        if sp.shape[1] < 3:
            return np.full((len(s), 3), np.nan)
        return sp.iloc[:, :3].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)

    r = parts(ra)
    d = parts(dec)
    sign = np.where(dec.astype(str).str.strip().str.startswith("-").to_numpy(), -1.0, 1.0)
    ra_deg = 15.0 * (r[:, 0] + r[:, 1] / 60 + r[:, 2] / 3600)
    dec_deg = sign * (np.abs(d[:, 0]) + d[:, 1] / 60 + d[:, 2] / 3600)
    return ra_deg, dec_deg


def load_bts(directory: str | Path = BTS_DIR, catalog: str = "bts_catalog_2021-04-02.csv",
             max_per_class: int | None = None, seed: int = 0, oids=None,
             ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Real Bright Transient Survey light curves with spectroscopic classes.

    Types are mapped with :data:`~alerce.classifiers.labels.BTS_RULES` (``SN Ia*`` -> SNIa,
    ``SN II*`` -> SNII, ``SN Ib*``/``SN Ic*`` -> SNIbc, ``SLSN*`` -> SLSN, ``nova`` -> CV/Nova);
    other types are dropped. There are no non-detections in this set.

    Parameters
    ----------
    max_per_class : int, optional
        Keep at most this many objects per class (random, ``seed``) to bound extraction time.
    oids : iterable of str, optional
        Keep only these objects (applied before ``max_per_class``).
    """
    directory = Path(directory)
    curves = pd.read_parquet(directory / "bts_antares_lightcurves_2710.parquet")
    cat = pd.read_csv(directory / catalog, usecols=["ZTFID", "RA", "Dec", "type"])
    cat = cat.drop_duplicates("ZTFID")
    cat["class"] = map_classes(cat["type"], BTS_RULES).to_numpy(dtype=object)
    cat = cat[cat["class"].notna() & cat["ZTFID"].isin(curves["ZTFID"].unique())]
    if oids is not None:
        cat = cat[cat["ZTFID"].astype(str).isin(set(map(str, oids)))]
    if max_per_class is not None:
        rng = np.random.default_rng(seed)
        keys = rng.random(len(cat))
        cat = (cat.assign(_k=keys).sort_values("_k").groupby("class", sort=False)
               .head(max_per_class).drop(columns="_k"))
    ra, dec = _sexagesimal(cat["RA"], cat["Dec"])
    positions = pd.DataFrame({"ra": ra, "dec": dec}, index=pd.Index(cat["ZTFID"].astype(str)))
    curves = curves[curves["ZTFID"].isin(cat["ZTFID"])]
    det = detections_from_long_table(curves, oid="ZTFID", positions=positions)
    labels = pd.DataFrame({"oid": cat["ZTFID"].astype(str).to_numpy(dtype=object),
                           "class": cat["class"].to_numpy(dtype=object),
                           "source": "bts"}).reset_index(drop=True)
    return det, _empty_non_detections(), labels


def load_periodic_history(directory: str | Path = PERIODIC_DIR,
                          ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """ALeRCE's 25 labelled periodic test curves (Ceph, DSCT, EA, LPV, RRL; legacy names mapped)."""
    directory = Path(directory)
    lc = pd.read_parquet(directory / "periodic_light_curves_25obj.parquet").reset_index()
    lab = pd.read_parquet(directory / "periodic_light_curve_labels_25obj.parquet").reset_index()
    n = len(lc)
    oids = lc["oid"].astype(str).to_numpy(dtype=object)
    ra = lab.set_index(lab["oid"].astype(str))["ra"].reindex(oids).to_numpy(dtype=np.float64)
    dec = lab.set_index(lab["oid"].astype(str))["dec"].reindex(oids).to_numpy(dtype=np.float64)
    det = pd.DataFrame({
        "oid": pd.array(oids, dtype=object),
        "candid": np.arange(1, n + 1, dtype=np.int64),
        "mjd": lc["mjd"].to_numpy(dtype=np.float64),
        "fid": lc["fid"].to_numpy(dtype=np.int64),
        "magpsf": lc["magpsf"].to_numpy(dtype=np.float64),
        "sigmapsf": lc["sigmapsf"].to_numpy(dtype=np.float64),
        "magpsf_corr": lc["magpsf_corr"].to_numpy(dtype=np.float64),
        "sigmapsf_corr": lc["sigmapsf_corr"].to_numpy(dtype=np.float64),
        "sigmapsf_corr_ext": lc["sigmapsf_corr"].to_numpy(dtype=np.float64),
        "corrected": np.isfinite(lc["magpsf_corr"].to_numpy(dtype=np.float64)),
        "dubious": np.zeros(n, dtype=bool),
        "isdiffpos": np.ones(n, dtype=np.int8),
        "rb": lc["rb"].to_numpy(dtype=np.float64),
        "ra": np.nan_to_num(ra),
        "dec": np.nan_to_num(dec),
    })
    classes = map_classes(lab["classALeRCE"], ALERCE_RULES)
    labels = pd.DataFrame({"oid": lab["oid"].astype(str).to_numpy(dtype=object),
                           "class": classes.to_numpy(dtype=object), "source": "alerce_history"})
    return det, _empty_non_detections(), labels[labels["class"].notna()].reset_index(drop=True)


def load_simulated(n_objects: int, seed: int, classes=None,
                   ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Simulated labelled curves from :func:`alerce.simulate.simulate_lightcurves`.

    ``classes`` defaults to the 15 light-curve classes in equal fractions. Oids get the
    prefix ``SIM`` + seed so simulations with different seeds never collide.
    """
    from alerce.simulate import simulate_lightcurves

    det, nd, lab = simulate_lightcurves(n_objects, seed, classes=classes)
    prefix = f"SIM{seed}_"
    det = det.assign(oid=(prefix + det["oid"].astype(str)).astype(object))
    nd = nd.assign(oid=(prefix + nd["oid"].astype(str)).astype(object))
    nd = nd[list(NON_DETECTION_FRAME_COLUMNS)]
    labels = pd.DataFrame({"oid": (prefix + lab["oid"].astype(str)).to_numpy(dtype=object),
                           "class": lab["class"].astype(str).to_numpy(dtype=object),
                           "source": "simulated"})
    return det, nd, labels


def load_alerce_sne(directory: str | Path = ALERCE_EXAMPLES_DIR,
                    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """ALeRCE's 30 labelled supernovae: corrected detections and non-detections (real data).

    ``objectId`` becomes ``oid`` and the non-detections' ``jd`` becomes ``mjd``. Used as an
    independent real test set (never in the default training data).
    """
    from alerce.batch import MJD_OFFSET
    from alerce.classifiers.labels import read_alerce_labels

    directory = Path(directory)
    det = pd.read_csv(directory / "30_sne_detections_corr.csv").rename(columns={"objectId": "oid"})
    nd = pd.read_csv(directory / "30_sne_non_detections.csv",
                     usecols=["objectId", "fid", "jd", "diffmaglim"])
    nd = pd.DataFrame({"oid": nd["objectId"].astype(str).to_numpy(dtype=object),
                       "fid": nd["fid"].to_numpy(dtype=np.int64),
                       "mjd": nd["jd"].to_numpy(dtype=np.float64) - MJD_OFFSET,
                       "diffmaglim": nd["diffmaglim"].to_numpy(dtype=np.float64)})
    det["oid"] = det["oid"].astype(str).astype(object)
    raw = read_alerce_labels(directory / "30_sne_labels.csv")
    labels = pd.DataFrame({"oid": raw["oid"].to_numpy(dtype=object),
                           "class": map_classes(raw["class"], ALERCE_RULES).to_numpy(dtype=object),
                           "source": "alerce_sne"})
    return det, nd, labels[labels["class"].notna()].reset_index(drop=True)
