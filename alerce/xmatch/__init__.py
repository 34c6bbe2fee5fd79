"""Cross-matching: HEALPix-partitioned local catalogs, a CDS XMatch client and the user
cross-match service. See ``docs/xmatch.md``.
"""

from .catalog import build_catalog, load_catalog_meta, main_catalog, read_partition, read_table_file
from .cds import CDS_URL, CDSXMatchError, cds_tables, cds_xmatch
from .healpix import ang2pix, ang2pix_nest, ang2pix_ring, cone_pixels
from .match import (
    ALLWISE_COLUMNS,
    XMATCH_COLUMNS,
    allwise_rows,
    crossmatch,
    crossmatch_tables,
    match_pairs,
    wise_metadata,
)
from .service import main_service, match_user_catalog

__all__ = [
    "ALLWISE_COLUMNS", "CDS_URL", "XMATCH_COLUMNS", "CDSXMatchError", "allwise_rows", "ang2pix",
    "ang2pix_nest", "ang2pix_ring", "build_catalog", "cds_tables", "cds_xmatch", "cone_pixels",
    "crossmatch", "crossmatch_tables", "load_catalog_meta", "main_catalog", "main_service",
    "match_pairs", "match_user_catalog", "read_partition", "read_table_file", "wise_metadata",
]
