"""SQL schema of the store: ALeRCE's Gen-1 tables (reference section 5.3) as SQLAlchemy Core.

Column names match the frames of :mod:`alerce.batch` and :mod:`alerce.correction`, so a frame is
written with no renaming. Types: ``oid`` TEXT, ``candid``/``pid``/``rfid`` BIGINT, ``fid`` and
counts INTEGER, measurements DOUBLE PRECISION (REAL on SQLite), flags BOOLEAN, versions TEXT.

Deliberate supersets of ALeRCE's tables (documented in ``docs/store.md``):

* ``detection`` also stores ``magnr, sigmagnr, chinr, sharpnr, mjdendref`` so the correction can be
  recomputed from the store alone; its primary key is ALeRCE's ``(candid, oid)`` declared as
  ``(oid, candid)`` so the key index also serves per-object reads (same for ``dataquality``).
* ``non_detection`` also stores ``parent_candid``; ``object`` also stores ``ndubious``.
* ``forced_photometry`` (Gen-2 table, key ``(oid, pid)``) stores the ZTF ``fp_hists`` fields plus the
  magnitudes computed by :func:`alerce.correction.forced_photometry_magnitudes`.
* ``score`` holds outlier scores; ``schema_version`` records the applied migrations.

On SQLite the narrow, key-heavy tables (:data:`SQLITE_WITHOUT_ROWID`) are ``WITHOUT ROWID`` tables
(schema version 2): their rows live in the primary-key B-tree, so an upsert touches one tree instead
of two and one object's rows sit together. The wide tables keep their rowid, where it is faster.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import BigInteger, Boolean, Column, DateTime, Double, Integer, MetaData, Table, Text

#: Tables whose upsert only replaces a stored row when the incoming ``candid`` is >= the stored one
#: (table name -> guard column), so replay order does not matter.
UPSERT_GUARDS: dict[str, str] = {"ss_ztf": "candid", "gaia_ztf": "candid"}

#: SQLite tables created ``WITHOUT ROWID`` (narrow rows, composite text keys, upsert-heavy): the
#: feature table is 43 % smaller with 8 % faster upserts and 21 % faster reads by object, a
#: non-detection read 2x faster than with a rowid table and its key index (``docs/store.md``); the
#: wide tables (``detection``, ``forced_photometry`` ...) are faster with a rowid.
SQLITE_WITHOUT_ROWID: tuple[str, ...] = ("non_detection", "xmatch", "feature", "probability", "score")

#: Tables :meth:`Store.load_state` returns.
STATE_TABLES: tuple[str, ...] = (
    "detection", "non_detection", "forced_photometry", "reference", "ps1_ztf", "object", "magstat",
)


def _f(*names: str) -> list[Column]:
    return [Column(n, Double) for n in names]


def _i(*names: str) -> list[Column]:
    return [Column(n, Integer) for n in names]


def _b(*names: str) -> list[Column]:
    return [Column(n, Boolean) for n in names]


def _t(*names: str) -> list[Column]:
    return [Column(n, Text) for n in names]


def _key(name: str, type_: sa.types.TypeEngine) -> Column:
    return Column(name, type_, primary_key=True, nullable=False, autoincrement=False)


_MAGS = ("magmean", "magmedian", "magmax", "magmin", "magsigma", "maglast", "magfirst")


def build_metadata(*, sqlite_without_rowid: bool = True) -> MetaData:
    """A fresh :class:`~sqlalchemy.MetaData` holding every table of the current schema.

    ``sqlite_without_rowid=False`` gives schema version 1, where every SQLite table has a rowid.
    """
    md = MetaData()
    oid = lambda: _key("oid", Text)  # noqa: E731

    Table(
        "object", md, oid(),
        *_i("ndethist", "ncovhist"), *_f("mjdstarthist", "mjdendhist"),
        *_b("corrected", "stellar"), *_i("ndet", "ndubious"),
        *_f("g_r_max", "g_r_max_corr", "g_r_mean", "g_r_mean_corr",
            "meanra", "meandec", "sigmara", "sigmadec", "deltajd", "firstmjd", "lastmjd"),
        *_t("step_id_corr"), *_b("diffpos", "reference_change"),
        sa.Index("ix_object_firstmjd", "firstmjd"),
        sa.Index("ix_object_lastmjd", "lastmjd"),
        sa.Index("ix_object_ndet", "ndet"),
        sa.Index("ix_object_meandec", "meandec"),  # cone-search prefilter (SQLite)
    )
    Table(
        "magstat", md, oid(), _key("fid", Integer),
        *_b("stellar", "corrected"), *_i("ndet", "ndubious"),
        *_f("dmdt_first", "dm_first", "sigmadm_first", "dt_first"),
        *_f(*_MAGS), *_f(*(m + "_corr" for m in _MAGS)),
        *_f("firstmjd", "lastmjd"), *_t("step_id_corr"), *_f("saturation_rate"),
    )
    Table(
        "detection", md, oid(), _key("candid", BigInteger),
        *_f("mjd"), *_i("fid"), Column("pid", BigInteger), *_f("diffmaglim"), *_i("isdiffpos", "nid"),
        *_f("ra", "dec", "magpsf", "sigmapsf", "magap", "sigmagap", "distnr", "rb"), *_t("rbversion"),
        *_f("drb"), *_t("drbversion"), *_f("magapbig", "sigmagapbig"), Column("rfid", BigInteger),
        *_f("magnr", "sigmagnr", "chinr", "sharpnr", "mjdendref"),
        *_f("magpsf_corr", "sigmapsf_corr", "sigmapsf_corr_ext"), *_b("corrected", "dubious"),
        Column("parent_candid", BigInteger), *_b("has_stamp"), *_t("step_id_corr"),
        sa.Index("ix_detection_mjd", "mjd"),
    )
    Table(
        "non_detection", md, oid(), _key("fid", Integer), _key("mjd", Double),
        *_f("diffmaglim"), Column("parent_candid", BigInteger),
    )
    Table(
        "forced_photometry", md, oid(), _key("pid", BigInteger),
        *_f("mjd"), *_i("fid", "field", "rcid"), Column("rfid", BigInteger),
        *_f("sciinpseeing", "scibckgnd", "scisigpix", "magzpsci", "magzpsciunc", "magzpscirms",
            "clrcoeff", "clrcounc", "exptime", "adpctdif1", "adpctdif2", "diffmaglim"),
        *_i("programid"), *_f("forcediffimflux", "forcediffimfluxunc"), *_t("procstatus"),
        *_f("distnr", "ranr", "decnr", "magnr", "sigmagnr", "chinr", "sharpnr"),
        Column("parent_candid", BigInteger), *_f("ra", "dec"),
        *_f("mag", "e_mag", "mag_corr", "e_mag_corr", "e_mag_corr_ext"), *_i("isdiffpos"),
        *_b("corrected", "dubious"), *_t("step_id_corr"),
    )
    Table(
        "ps1_ztf", md, oid(), _key("candid", BigInteger),
        *[c for k in (1, 2, 3) for c in (
            Column(f"objectidps{k}", BigInteger),
            *_f(f"sgmag{k}", f"srmag{k}", f"simag{k}", f"szmag{k}", f"sgscore{k}", f"distpsnr{k}"))],
        *_i("nmtchps"), *_b("unique1", "unique2", "unique3"),
    )
    Table("ss_ztf", md, oid(), Column("candid", BigInteger), *_f("ssdistnr", "ssmagnr"), *_t("ssnamenr"))
    Table(
        "gaia_ztf", md, oid(), Column("candid", BigInteger),
        *_f("neargaia", "neargaiabright", "maggaia", "maggaiabright"), *_b("unique1"),
    )
    Table(
        "reference", md, oid(), _key("rfid", BigInteger),
        Column("candid", BigInteger), *_i("fid", "rcid", "field"),
        *_f("magnr", "sigmagnr", "chinr", "sharpnr", "ranr", "decnr", "mjdstartref", "mjdendref"),
        *_i("nframesref"),
    )
    Table(
        "dataquality", md, oid(), _key("candid", BigInteger), *_i("fid"),
        *_f("xpos", "ypos", "chipsf", "sky", "fwhm", "classtar", "mindtoedge", "seeratio",
            "aimage", "bimage", "aimagerat", "bimagerat"), *_i("nneg", "nbad"),
        *_f("sumrat", "scorr", "dsnrms", "ssnrms", "magzpsci", "magzpsciunc", "magzpscirms"),
        *_i("nmatches"),
        *_f("clrcoeff", "clrcounc", "zpclrcov", "zpmed", "clrmed", "clrrms", "exptime"),
    )
    Table(
        "xmatch", md, oid(), _key("catid", Text),
        *_t("oid_catalog"), *_f("dist"), *_t("class_catalog"), *_f("period"),
    )
    Table(
        "allwise", md, _key("oid_catalog", Text), *_f("ra", "dec"),
        *_f(*(f"w{k}mpro" for k in range(1, 5)), *(f"w{k}sigmpro" for k in range(1, 5))),
        *_f("j_m_2mass", "h_m_2mass", "k_m_2mass", "j_msig_2mass", "h_msig_2mass", "k_msig_2mass"),
    )
    Table(
        "feature", md, oid(), _key("name", Text), _key("fid", Integer), _key("version", Text),
        *_f("value"),
    )
    Table("feature_version", md, _key("version", Text), *_t("step_id_feature", "step_id_preprocess"))
    Table(
        "probability", md, oid(), _key("class_name", Text), _key("classifier_name", Text),
        _key("classifier_version", Text), *_f("probability"), *_i("ranking"),
        sa.Index("ix_probability_rank1", "classifier_name", "class_name", "probability"),
    )
    Table(
        "taxonomy", md, _key("classifier_name", Text), _key("classifier_version", Text),
        Column("classes", sa.JSON),
    )
    Table(
        "score", md, oid(), _key("detector_name", Text), _key("detector_version", Text),
        _key("category", Text), *_f("score"),
    )
    Table("step", md, _key("step_id", Text), *_t("name", "version", "comments"), Column("date", DateTime))
    Table(
        "pipeline", md, _key("pipeline_id", Text),
        *_t("step_id_corr", "step_id_feat", "step_id_clf", "step_id_out", "step_id_stamp"),
        Column("date", DateTime),
    )
    Table(
        "schema_version", md, _key("version", Integer), Column("applied_at", DateTime),
        *_t("description"),
    )
    if sqlite_without_rowid:
        for name in SQLITE_WITHOUT_ROWID:
            md.tables[name].dialect_kwargs["sqlite_with_rowid"] = False
    return md


#: The current schema.
METADATA: MetaData = build_metadata()

#: Data tables (everything but ``schema_version``), in creation order.
TABLE_NAMES: tuple[str, ...] = tuple(t for t in METADATA.tables if t != "schema_version")


def primary_key(table: Table) -> list[str]:
    """Names of the primary-key columns of ``table`` in key order."""
    return [c.name for c in table.primary_key.columns]
