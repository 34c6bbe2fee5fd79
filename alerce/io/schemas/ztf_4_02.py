"""The ZTF alert Avro schema, version 4.02, as a Python dict.

Written field by field from the public ZTF alert format description (field names, Avro types,
defaults and nesting of the ``ztf.alert`` record and its ``candidate``, ``prv_candidate``,
``fp_hist`` and ``cutout`` sub-records). Documentation strings are omitted. The official
``.avsc`` files are only used by the test-suite, to check that they can read what we write.

Public names
------------
:data:`ZTF_4_02_SCHEMA`
    The full, self-contained schema (nested records inlined), ready for
    :func:`fastavro.parse_schema`.
:data:`CANDIDATE_FIELDS`, :data:`PRV_CANDIDATE_FIELDS`, :data:`FP_HIST_FIELDS`
    ``(name, type)`` pairs of the sub-records, in schema order.
"""

from __future__ import annotations

import copy
from typing import Any

SCHEMA_VERSION = "4.02"

# Compact type codes: a trailing "?" makes the field a ["null", T] union with default null;
# a leading "!" makes it a ["null", T] union *without* a default (as in the official files).
_CANDIDATE = """
jd double; fid int; pid long; diffmaglim float?; pdiffimfilename string?; programpi string?;
programid int; candid long; isdiffpos string; tblid long?; nid int?; rcid int?; field int?;
xpos float?; ypos float?; ra double; dec double; magpsf float; sigmapsf float; chipsf float?;
magap float?; sigmagap float?; distnr float?; magnr float?; sigmagnr float?; chinr float?;
sharpnr float?; sky float?; magdiff float?; fwhm float?; classtar float?; mindtoedge float?;
magfromlim float?; seeratio float?; aimage float?; bimage float?; aimagerat float?;
bimagerat float?; elong float?; nneg int?; nbad int?; rb float?; ssdistnr float?;
ssmagnr float?; ssnamenr string?; sumrat float?; magapbig float?; sigmagapbig float?;
ranr double; decnr double; sgmag1 float?; srmag1 float?; simag1 float?; szmag1 float?;
sgscore1 float?; distpsnr1 float?; ndethist int; ncovhist int; jdstarthist double?;
jdendhist double?; scorr double?; tooflag int?; objectidps1 long?; objectidps2 long?;
sgmag2 float?; srmag2 float?; simag2 float?; szmag2 float?; sgscore2 float?; distpsnr2 float?;
objectidps3 long?; sgmag3 float?; srmag3 float?; simag3 float?; szmag3 float?; sgscore3 float?;
distpsnr3 float?; nmtchps int; rfid long; jdstartref double; jdendref double; nframesref int;
rbversion string; dsnrms float?; ssnrms float?; dsdiff float?; magzpsci float?;
magzpsciunc float?; magzpscirms float?; nmatches int; clrcoeff float?; clrcounc float?;
zpclrcov float?; zpmed float?; clrmed float?; clrrms float?; neargaia float?;
neargaiabright float?; maggaia float?; maggaiabright float?; exptime float?; drb float?;
drbversion string
"""

_PRV_CANDIDATE = """
jd double; fid int; pid long; diffmaglim float?; pdiffimfilename string?; programpi string?;
programid int; candid !long; isdiffpos !string; tblid long?; nid int?; rcid int?; field int?;
xpos float?; ypos float?; ra !double; dec !double; magpsf !float; sigmapsf !float;
chipsf float?; magap float?; sigmagap float?; distnr float?; magnr float?; sigmagnr float?;
chinr float?; sharpnr float?; sky float?; magdiff float?; fwhm float?; classtar float?;
mindtoedge float?; magfromlim float?; seeratio float?; aimage float?; bimage float?;
aimagerat float?; bimagerat float?; elong float?; nneg int?; nbad int?; rb float?;
ssdistnr float?; ssmagnr float?; ssnamenr string?; sumrat float?; magapbig float?;
sigmagapbig float?; ranr !double; decnr !double; scorr double?; magzpsci float?;
magzpsciunc float?; magzpscirms float?; clrcoeff float?; clrcounc float?; rbversion string
"""

_FP_HIST = """
field int?; rcid int?; fid int; pid long; rfid long; sciinpseeing float?; scibckgnd float?;
scisigpix float?; magzpsci float?; magzpsciunc float?; magzpscirms float?; clrcoeff float?;
clrcounc float?; exptime float?; adpctdif1 float?; adpctdif2 float?; diffmaglim float?;
programid int; jd double; forcediffimflux float?; forcediffimfluxunc float?; procstatus string?;
distnr float?; ranr double; decnr double; magnr float?; sigmagnr float?; chinr float?;
sharpnr float?
"""


def _parse(spec: str) -> list[tuple[str, str]]:
    pairs = []
    for item in spec.replace("\n", " ").split(";"):
        item = item.strip()
        if item:
            name, typ = item.split()
            pairs.append((name, typ))
    return pairs


def _field(name: str, code: str) -> dict[str, Any]:
    if code.endswith("?"):
        return {"name": name, "type": ["null", code[:-1]], "default": None}
    if code.startswith("!"):
        return {"name": name, "type": ["null", code[1:]]}
    return {"name": name, "type": code}


CANDIDATE_FIELDS: tuple[tuple[str, str], ...] = tuple(_parse(_CANDIDATE))
PRV_CANDIDATE_FIELDS: tuple[tuple[str, str], ...] = tuple(_parse(_PRV_CANDIDATE))
FP_HIST_FIELDS: tuple[tuple[str, str], ...] = tuple(_parse(_FP_HIST))


def _record(name: str, fields: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    return {
        "type": "record",
        "name": name,
        "namespace": "ztf.alert",
        "fields": [_field(n, c) for n, c in fields],
    }


def _build() -> dict[str, Any]:
    cutout = {
        "type": "record",
        "name": "cutout",
        "namespace": "ztf.alert",
        "fields": [{"name": "fileName", "type": "string"}, {"name": "stampData", "type": "bytes"}],
    }
    return {
        "type": "record",
        "name": "alert",
        "namespace": "ztf",
        "version": SCHEMA_VERSION,
        "fields": [
            {"name": "schemavsn", "type": "string"},
            {"name": "publisher", "type": "string"},
            {"name": "objectId", "type": "string"},
            {"name": "candid", "type": "long"},
            {"name": "candidate", "type": _record("candidate", CANDIDATE_FIELDS)},
            {
                "name": "prv_candidates",
                "type": ["null", {"type": "array",
                                  "items": _record("prv_candidate", PRV_CANDIDATE_FIELDS)}],
                "default": None,
            },
            {
                "name": "fp_hists",
                "type": ["null", {"type": "array", "items": _record("fp_hist", FP_HIST_FIELDS)}],
                "default": None,
            },
            {"name": "cutoutScience", "type": ["null", cutout], "default": None},
            {"name": "cutoutTemplate", "type": ["null", "ztf.alert.cutout"], "default": None},
            {"name": "cutoutDifference", "type": ["null", "ztf.alert.cutout"], "default": None},
        ],
    }


_SCHEMA = _build()


def ztf_4_02_schema() -> dict[str, Any]:
    """Return a fresh deep copy of the ZTF 4.02 alert schema (safe to mutate)."""
    return copy.deepcopy(_SCHEMA)


#: The schema itself (treat as read-only; use :func:`ztf_4_02_schema` for a mutable copy).
ZTF_4_02_SCHEMA: dict[str, Any] = _SCHEMA
