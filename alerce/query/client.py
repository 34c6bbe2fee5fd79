""":class:`AlerceQuery`: the ALeRCE client's query methods, answered from a local store.

Method names and parameters follow the ALeRCE python client (``query_objects``,
``query_lightcurve``, ``query_detections``, ...), so code written for the public API can run on a
local SQLite or PostgreSQL store. See ``docs/query.md``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from alerce.store import METADATA, Store
from alerce.store.convert import frame_from_rows

from . import cone
from .formats import check_format, convert


class QueryError(ValueError):
    """A query parameter is invalid (the message lists the valid values)."""


class ObjectNotFoundError(KeyError):
    """The requested object is not in the store."""


def _table(name: str) -> sa.Table:
    return METADATA.tables[name]


def _pair(value: Any, name: str) -> tuple[float | None, float | None]:
    """``[min, max]`` (either may be None) or a scalar meaning ``min``."""
    if value is None:
        return None, None
    if np.isscalar(value):
        return float(value), None
    vals = list(value)
    if len(vals) != 2:
        raise QueryError(f"{name} must be [min, max] (use None for an open end), got {value!r}")
    lo, hi = (None if v is None else float(v) for v in vals)
    return lo, hi


def _oids(oid: str | Sequence[str]) -> list[str]:
    if isinstance(oid, str):
        return [oid]
    if oid is None:
        raise QueryError("oid is required")
    return [str(o) for o in oid]


class AlerceQuery:
    """Query a store like the ALeRCE API.

    Parameters
    ----------
    store : str or Store
        Store URL (``sqlite:///alerce.db``, ``postgresql+psycopg://...``) or an open :class:`Store`.
    archive : str, optional
        Root of the raw Avro archive (``ROOT/YYYYMMDD/<candid>.avro``) used by :meth:`get_stamps`
        and :meth:`get_avro` when they are not given one.

    Notes
    -----
    Cone searches use ``q3c_radial_query`` on PostgreSQL when the q3c extension is installed in the
    database; otherwise (and on SQLite) a declination-band / RA-window prefilter in SQL followed by
    the exact haversine distance in numpy. Both give the same rows.
    """

    def __init__(self, store: str | Store, archive: str | None = None) -> None:
        if isinstance(store, Store):
            self.store, self._own = store, False
        else:
            self.store, self._own = Store(str(store), create=False), True
        self.archive = archive
        #: Seconds the list of classifiers used to validate filters is cached.
        self.cache_seconds = 60.0
        self._classifier_cache: tuple[float, list[dict[str, Any]]] | None = None

    # -- plumbing ------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the store if this object opened it."""
        if self._own:
            self.store.close()

    def __enter__(self) -> AlerceQuery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AlerceQuery({self.store.url!r})"

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.store.backend

    @cached_property
    def has_q3c(self) -> bool:
        """True on PostgreSQL with the q3c extension installed in the database."""
        if self.backend != "postgresql":
            return False
        with self.store.engine.connect() as conn:
            return conn.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'q3c'").first() is not None

    def _in(self, column: sa.ColumnElement, values: list) -> sa.ColumnElement:
        """``column IN values`` with the whole list bound as one parameter (``=`` for one value)."""
        if len(values) == 1:
            return column == values[0]
        if self.backend == "postgresql":
            from sqlalchemy.dialects.postgresql import ARRAY

            return column == sa.any_(sa.bindparam(None, values, type_=ARRAY(column.type)))
        each = sa.select(sa.column("value")).select_from(
            sa.func.json_each(sa.bindparam(None, json.dumps(values), type_=sa.Text)))
        return column.in_(each.scalar_subquery())

    def _fetch(self, stmt: sa.Select) -> pd.DataFrame:
        """Run a select; columns get the dtypes of their SQL types (see :mod:`alerce.store.convert`)."""
        cols = list(stmt.selected_columns)
        fake = sa.Table("_result", sa.MetaData(),
                        *(sa.Column(c.name, getattr(c, "type", sa.Text())) for c in cols))
        with self.store.engine.connect() as conn:
            result = conn.execute(stmt)
            names = list(result.keys())
            rows = result.fetchall()
        return frame_from_rows(rows, names, fake)

    def _scalar(self, stmt: sa.Select) -> Any:
        with self.store.engine.connect() as conn:
            return conn.execute(stmt).scalar()

    def _exists(self, oids: list[str]) -> list[str]:
        obj = _table("object")
        found = set(self._fetch(sa.select(obj.c.oid).where(self._in(obj.c.oid, oids)))["oid"])
        return [o for o in oids if o not in found]

    def _per_object(self, table: str, oid: str | Sequence[str], order: Sequence[str], fmt: str,
                    extra: Sequence[sa.ColumnElement] = (), sort: str | None = None) -> Any:
        check_format(fmt)
        oids = _oids(oid)
        t = _table(table)
        if sort is not None and sort not in t.c:
            raise QueryError(f"unknown sort column {sort!r}; valid columns: {[c.name for c in t.c]}")
        stmt = sa.select(*t.c).where(self._in(t.c.oid, oids), *extra)
        first = [t.c[sort].asc().nulls_last()] if sort is not None else []
        stmt = stmt.order_by(*first, *(t.c[c] for c in order))
        df = self._fetch(stmt)
        if not len(df):
            missing = self._exists(oids)
            if missing and len(missing) == len(oids):
                raise ObjectNotFoundError(f"object(s) not in the store: {missing[:10]}")
        return convert(df, fmt)

    # -- objects -------------------------------------------------------------------------------
    def _classifier_names(self, need: str | None = None) -> list[str]:
        return sorted({r["classifier_name"] for r in self._known_classifiers(need)})

    def _object_conditions(self, stmt: sa.Select, obj: sa.Table, ndet, firstmjd, lastmjd,
                           oid) -> sa.Select:
        for name, value in (("ndet", ndet), ("firstmjd", firstmjd), ("lastmjd", lastmjd)):
            lo, hi = _pair(value, name)
            if lo is not None:
                stmt = stmt.where(obj.c[name] >= lo)
            if hi is not None:
                stmt = stmt.where(obj.c[name] <= hi)
        if oid is not None:
            stmt = stmt.where(self._in(obj.c.oid, _oids(oid)))
        return stmt

    def cone_oids(self, ra: float, dec: float, radius: float) -> list[str]:
        """Oids of the objects whose ``(meanra, meandec)`` lies within ``radius`` arcsec (prefilter path).

        This is the SQLite / no-q3c path: declination band and RA window in SQL, exact haversine
        distance in numpy.
        """
        ra, dec, r = cone.check_cone(ra, dec, radius)
        obj = _table("object")
        stmt = sa.select(obj.c.oid, obj.c.meanra, obj.c.meandec).where(
            cone.prefilter(obj.c.meanra, obj.c.meandec, ra, dec, r))
        with self.store.engine.connect() as conn:
            rows = conn.execute(stmt).fetchall()
        if not rows:
            return []
        oids, ras, decs = zip(*rows)
        keep = cone.in_cone(np.array(ras, dtype="float64"), np.array(decs, dtype="float64"), ra, dec, r)
        return [str(o) for o, k in zip(oids, keep) if k]

    def _cone_condition(self, obj: sa.Table, ra, dec, radius) -> sa.ColumnElement | None:
        if ra is None and dec is None and radius is None:
            return None
        if ra is None or dec is None or radius is None:
            raise QueryError("a cone search needs ra, dec (degrees) and radius (arcsec) together")
        ra_, dec_, r = cone.check_cone(ra, dec, radius)
        if self.has_q3c:
            return sa.func.q3c_radial_query(obj.c.meanra, obj.c.meandec, ra_, dec_, r)
        oids = self.cone_oids(ra_, dec_, radius)
        return self._in(obj.c.oid, oids) if oids else sa.false()

    def query_objects(self, classifier: str | None = None, class_name: str | None = None,
                      probability: float | None = None, ranking: int | None = None,
                      ndet=None, firstmjd=None, lastmjd=None, ra: float | None = None,
                      dec: float | None = None, radius: float | None = None,
                      oid: Sequence[str] | None = None, page: int = 1, page_size: int = 10,
                      count: bool = False, order_by: str | None = None, order_mode: str = "ASC",
                      format: str = "pandas", classifier_version: str | None = None) -> Any:
        """Objects matching every given filter, one page at a time.

        Parameters
        ----------
        classifier, class_name : str, optional
            Keep objects with a ``probability`` row of this classifier / class (joined: the result
            gains ``classifier_name, classifier_version, class_name, probability, ranking``).
        probability : float, optional
            Minimum probability of that row.
        ranking : int, optional
            Ranking of that row; defaults to 1 (the most likely class) when a classifier, class or
            probability is given, as in the ALeRCE API.
        ndet, firstmjd, lastmjd : [min, max] or scalar min, optional
            Inclusive ranges (None for an open end).
        ra, dec : float, optional
            Cone centre in degrees.
        radius : float, optional
            Cone radius in arcsec (tested on ``meanra, meandec``).
        oid : list of str, optional
            Restrict to these objects.
        page, page_size : int
            1-based page number and rows per page.
        count : bool
            Return the number of matching rows (an int) instead of a page.
        order_by : str, optional
            Any result column; rows are ordered by it (NULLs last) then by ``oid`` (stable pages).
        order_mode : {"ASC", "DESC"}
        format : {"pandas", "json", "votable", "csv"}

        Raises
        ------
        QueryError
            Unknown classifier, class, order column or order mode, bad ranges or paging.
        """
        check_format(format)
        obj, prob = _table("object"), _table("probability")
        cols: list[sa.ColumnElement] = list(obj.c)
        stmt_from: Any = obj
        conds: list[sa.ColumnElement] = []
        tiebreak: list[sa.ColumnElement] = []
        if classifier is not None or class_name is not None or probability is not None or ranking is not None:
            valid = self._classifier_names(classifier)
            if classifier is not None and classifier not in valid:
                raise QueryError(f"unknown classifier {classifier!r}; valid classifiers: {valid}")
            if class_name is not None:
                classes = self._class_names(classifier)
                if class_name not in classes:
                    raise QueryError(f"unknown class {class_name!r} for classifier {classifier!r}; "
                                     f"valid classes: {classes}")
            stmt_from = obj.join(prob, prob.c.oid == obj.c.oid)
            cols += [prob.c.classifier_name, prob.c.classifier_version, prob.c.class_name,
                     prob.c.probability, prob.c.ranking]
            conds.append(prob.c.ranking == (1 if ranking is None else int(ranking)))
            if classifier is not None:
                conds.append(prob.c.classifier_name == classifier)
            if classifier_version is not None:
                conds.append(prob.c.classifier_version == classifier_version)
            if class_name is not None:
                conds.append(prob.c.class_name == class_name)
            if probability is not None:
                conds.append(prob.c.probability >= float(probability))
            tiebreak = [prob.c.classifier_name, prob.c.classifier_version, prob.c.class_name]
        names = [c.name for c in cols]
        if order_by is not None and order_by not in names:
            raise QueryError(f"unknown order_by column {order_by!r}; valid columns: {names}")
        mode = str(order_mode).upper()
        if mode not in ("ASC", "DESC"):
            raise QueryError(f"order_mode must be 'ASC' or 'DESC', got {order_mode!r}")
        try:
            page, page_size = int(page), int(page_size)
        except (TypeError, ValueError):
            raise QueryError(f"page and page_size must be integers, got {page!r}, {page_size!r}") from None
        if page < 1 or page_size < 1:
            raise QueryError(f"page and page_size must be >= 1, got {page}, {page_size}")
        cone_cond = self._cone_condition(obj, ra, dec, radius)
        if cone_cond is not None:
            conds.append(cone_cond)

        stmt = sa.select(*cols).select_from(stmt_from).where(*conds)
        stmt = self._object_conditions(stmt, obj, ndet, firstmjd, lastmjd, oid)
        if count:
            return int(self._scalar(sa.select(sa.func.count()).select_from(stmt.subquery())))
        order: list[Any] = []
        if order_by is not None and order_by != "oid":
            col = cols[names.index(order_by)]
            order.append((col.desc() if mode == "DESC" else col.asc()).nulls_last())
        order.append(obj.c.oid.desc() if (mode == "DESC" and order_by == "oid") else obj.c.oid.asc())
        stmt = stmt.order_by(*order, *tiebreak).limit(page_size).offset((page - 1) * page_size)
        return convert(self._fetch(stmt), format)

    def query_object(self, oid: str, format: str = "json") -> Any:
        """One object's row: a dict (``json``), a Series (``pandas``), or VOTable / CSV of one row.

        Raises
        ------
        ObjectNotFoundError
            The object is not in the store.
        """
        check_format(format)
        obj = _table("object")
        df = self._fetch(sa.select(*obj.c).where(obj.c.oid == str(oid)))
        if not len(df):
            raise ObjectNotFoundError(f"object {oid!r} is not in the store")
        if format == "json":
            return convert(df, "json")[0]
        if format == "pandas":
            return df.iloc[0]
        return convert(df, format)

    # -- light curves --------------------------------------------------------------------------
    def query_detections(self, oid: str | Sequence[str], format: str = "pandas", sort: str | None = None) -> Any:
        """Detections of one object (or a list), ordered by oid, mjd, candid (``sort``: a column to order by first)."""
        return self._per_object("detection", oid, ("oid", "mjd", "candid"), format, sort=sort)

    def query_non_detections(self, oid: str | Sequence[str], format: str = "pandas", sort: str | None = None) -> Any:
        """Non-detections (upper limits), ordered by oid, mjd, fid (``sort``: a column to order by first)."""
        return self._per_object("non_detection", oid, ("oid", "mjd", "fid"), format, sort=sort)

    def query_forced_photometry(self, oid: str | Sequence[str], format: str = "pandas", sort: str | None = None) -> Any:
        """Forced photometry, ordered by oid, mjd, pid (``sort``: a column to order by first)."""
        return self._per_object("forced_photometry", oid, ("oid", "mjd", "pid"), format, sort=sort)

    def query_lightcurve(self, oid: str | Sequence[str], format: str = "pandas") -> dict[str, Any]:
        """``{"detections": ..., "non_detections": ...}``, each in ``format``.

        An object with detections but no non-detections gets an empty ``non_detections``.
        """
        check_format(format)
        det = self.query_detections(oid, format)
        try:
            non = self.query_non_detections(oid, format)
        except ObjectNotFoundError:
            non = convert(pd.DataFrame(columns=[c.name for c in _table("non_detection").c]), format)
        return {"detections": det, "non_detections": non}

    def query_magstats(self, oid: str | Sequence[str], format: str = "pandas") -> Any:
        """Per-band statistics (``magstat`` rows), ordered by oid, fid."""
        return self._per_object("magstat", oid, ("oid", "fid"), format)

    # -- classifications and features ----------------------------------------------------------
    def query_probabilities(self, oid: str | Sequence[str], classifier: str | None = None,
                            classifier_version: str | None = None, format: str = "pandas") -> Any:
        """Class probabilities, ordered by classifier, version and ranking.

        Raises
        ------
        QueryError
            Unknown classifier (the message lists the known ones).
        """
        prob = _table("probability")
        extra = []
        if classifier is not None:
            valid = self._classifier_names(classifier)
            if classifier not in valid:
                raise QueryError(f"unknown classifier {classifier!r}; valid classifiers: {valid}")
            extra.append(prob.c.classifier_name == classifier)
        if classifier_version is not None:
            extra.append(prob.c.classifier_version == classifier_version)
        return self._per_object("probability", oid,
                                ("oid", "classifier_name", "classifier_version", "ranking", "class_name"),
                                format, extra)

    def query_features(self, oid: str | Sequence[str], version: str | None = None,
                       format: str = "pandas") -> Any:
        """Every feature of the object(s) (``feature`` rows: name, fid, version, value)."""
        feat = _table("feature")
        extra = [] if version is None else [feat.c.version == version]
        return self._per_object("feature", oid, ("oid", "name", "fid", "version"), format, extra)

    def query_feature(self, oid: str | Sequence[str], name: str, format: str = "pandas") -> Any:
        """One feature (all bands and versions) of the object(s).

        Raises
        ------
        QueryError
            No feature of that name exists in the store (the message lists some that do).
        """
        feat = _table("feature")
        try:
            out = self._per_object("feature", oid, ("oid", "name", "fid", "version"), "pandas",
                                   [feat.c.name == name])
        except ObjectNotFoundError:
            known = self._fetch(sa.select(feat.c.name).where(feat.c.name == name).limit(1))
            if len(known):
                raise
            out = pd.DataFrame()
        if not len(out):
            names = self._fetch(sa.select(feat.c.name).distinct().order_by(feat.c.name))["name"].tolist()
            if name not in names:
                shown = names[:50] + (["..."] if len(names) > 50 else [])
                raise QueryError(f"unknown feature {name!r}; features in the store: {shown}")
        return convert(out, format)

    def _taxonomy(self) -> pd.DataFrame:
        tax = _table("taxonomy")
        return self._fetch(sa.select(*tax.c).order_by(tax.c.classifier_name, tax.c.classifier_version))

    def _known_classifiers(self, need: str | None = None) -> list[dict[str, Any]]:
        """:meth:`query_classifiers` rows, cached for :attr:`cache_seconds` (validation of filters);
        re-read at once when classifier ``need`` is not in the cached list."""
        now = time.monotonic()
        if (self._classifier_cache is None or now - self._classifier_cache[0] > self.cache_seconds
                or (need is not None and all(r["classifier_name"] != need for r in self._classifier_cache[1]))):
            self._classifier_cache = (now, self._read_classifiers())
        return self._classifier_cache[1]

    def query_classifiers(self, format: str = "json") -> Any:
        """Known classifiers: ``classifier_name, classifier_version, classes``.

        From the ``taxonomy`` table, plus classifiers that only appear in ``probability`` (their
        classes are the distinct class names stored for them).
        """
        check_format(format)
        rows = self._read_classifiers()
        self._classifier_cache = (time.monotonic(), rows)
        if format == "json":
            return [dict(r) for r in rows]
        df = pd.DataFrame(rows, columns=["classifier_name", "classifier_version", "classes"])
        if format != "pandas":
            df = df.assign(classes=[",".join(c) for c in df["classes"]])
        return convert(df, format)

    def _read_classifiers(self) -> list[dict[str, Any]]:
        tax = self._taxonomy()
        rows = [{"classifier_name": str(r.classifier_name), "classifier_version": str(r.classifier_version),
                 "classes": list(r.classes or [])} for r in tax.itertuples()]
        seen = {(r["classifier_name"], r["classifier_version"]) for r in rows}
        prob = _table("probability")
        pairs = self._fetch(sa.select(prob.c.classifier_name, prob.c.classifier_version).distinct())
        for name, version in sorted(zip(pairs["classifier_name"], pairs["classifier_version"], strict=True)):
            if (str(name), str(version)) in seen:
                continue
            classes = self._fetch(sa.select(prob.c.class_name).distinct().where(
                prob.c.classifier_name == name, prob.c.classifier_version == version
            ).order_by(prob.c.class_name))["class_name"].tolist()
            rows.append({"classifier_name": str(name), "classifier_version": str(version),
                         "classes": [str(c) for c in classes]})
        rows.sort(key=lambda r: (r["classifier_name"], r["classifier_version"]))
        return rows

    def _class_names(self, classifier: str | None, version: str | None = None) -> list[str]:
        out: list[str] = []
        for row in self._known_classifiers():
            if (classifier is None or row["classifier_name"] == classifier) and (
                    version is None or row["classifier_version"] == version):
                out += [c for c in row["classes"] if c not in out]
        return out

    def query_classes(self, classifier: str, version: str | None = None, format: str = "json") -> Any:
        """Class names of a classifier (version optional): a list (``json``) or a one-column frame.

        Raises
        ------
        QueryError
            Unknown classifier or version (the message lists the known ones).
        """
        check_format(format)
        known = self._known_classifiers(classifier)
        names = sorted({r["classifier_name"] for r in known})
        if classifier not in names:
            raise QueryError(f"unknown classifier {classifier!r}; valid classifiers: {names}")
        versions = [r["classifier_version"] for r in known if r["classifier_name"] == classifier]
        if version is not None and version not in versions:
            raise QueryError(f"unknown version {version!r} of classifier {classifier!r}; "
                             f"valid versions: {versions}")
        classes = self._class_names(classifier, version)
        if format == "json":
            return classes
        return convert(pd.DataFrame({"class_name": pd.Series(classes, dtype="str")}), format)

    # -- direct SQL ----------------------------------------------------------------------------
    def send_query(self, query: str, format: str = "pandas", params: dict[str, Any] | None = None) -> Any:
        """Run a read-only SQL ``SELECT`` (or ``WITH ... SELECT``) and return its rows.

        The statement runs in a read-only transaction (PostgreSQL ``READ ONLY``, SQLite
        ``PRAGMA query_only``) that is rolled back, so it cannot change the store. Values get the
        types the driver returns (no store typing). ``params`` binds ``:name`` placeholders.

        Raises
        ------
        QueryError
            Not a SELECT, or the database refused it (the message carries the database's error).
        """
        check_format(format)
        text = str(query).strip().rstrip(";")
        if not text.lower().startswith(("select", "with")) or ";" in text:
            raise QueryError("send_query runs one read-only SELECT statement")
        with self.store.engine.connect() as conn:
            sqlite = self.backend == "sqlite"
            try:
                if sqlite:
                    conn.exec_driver_sql("PRAGMA query_only = ON")
                else:
                    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                result = conn.execute(sa.text(text), params or {})
                df = pd.DataFrame.from_records(result.fetchall(), columns=list(result.keys()))
            except sa.exc.DBAPIError as exc:
                raise QueryError(f"query failed: {exc.orig}") from None
            finally:
                conn.rollback()
                if sqlite:
                    conn.exec_driver_sql("PRAGMA query_only = OFF")
        return convert(df, format)

    # -- raw archive ---------------------------------------------------------------------------
    def _archive_path(self, oid: str, candid: int | None, archive: str | None) -> tuple[str, int]:
        from .archive import find_packet

        root = archive or self.archive
        if root is None:
            raise QueryError("no archive: pass archive=ROOT (the raw Avro archive directory)")
        det = _table("detection")
        stmt = sa.select(det.c.candid, det.c.mjd, det.c.has_stamp).where(det.c.oid == str(oid))
        if candid is not None:
            stmt = stmt.where(det.c.candid == int(candid))
        rows = self._fetch(stmt.order_by(det.c.mjd, det.c.candid))
        mjd = None
        if candid is None:
            if not len(rows):
                if self._exists([str(oid)]):
                    raise ObjectNotFoundError(f"object {oid!r} is not in the store")
                raise QueryError(f"object {oid!r} has no detection; pass candid=")
            with_stamp = rows[rows["has_stamp"].fillna(False).astype(bool)] if "has_stamp" in rows else rows
            first = (with_stamp if len(with_stamp) else rows).iloc[0]
            candid, mjd = int(first["candid"]), float(first["mjd"])
        elif len(rows):
            mjd = float(rows["mjd"].iloc[0])
        return find_packet(os.fspath(root), int(candid), mjd), int(candid)

    def get_avro(self, oid: str, candid: int | None = None, archive: str | None = None) -> bytes:
        """Raw bytes of an alert packet from the archive (default: the first detection with stamps)."""
        from .archive import read_bytes

        path, _ = self._archive_path(oid, candid, archive)
        return read_bytes(path)

    def get_stamps(self, oid: str, candid: int | None = None, archive: str | None = None,
                   format: str = "HDUList") -> dict[str, Any]:
        """Cutouts of an alert: ``{"science", "template", "difference"}``.

        Parameters
        ----------
        format : {"HDUList", "numpy"}
            An astropy ``HDUList`` per cutout, or 2-D float32 arrays.
        """
        from .archive import packet_stamps

        if format not in ("HDUList", "numpy"):
            raise QueryError(f"unknown stamp format {format!r}; valid formats: HDUList, numpy")
        path, cand = self._archive_path(oid, candid, archive)
        return packet_stamps(path, cand, numpy=(format == "numpy"))


def connect(store: str | Store, archive: str | None = None) -> AlerceQuery:
    """Open a query client on a store (same as ``AlerceQuery(store, archive)``)."""
    return AlerceQuery(store, archive)
