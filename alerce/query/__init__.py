"""Query API over the store, named like the ALeRCE python client, and table export.

>>> from alerce.query import connect
>>> client = connect("sqlite:///alerce.db")                       # doctest: +SKIP
>>> client.query_objects(classifier="lc_classifier", class_name="SNIa", page_size=20)  # doctest: +SKIP

See ``docs/query.md``.
"""

from .client import AlerceQuery, ObjectNotFoundError, QueryError, connect
from .cone import angular_distance
from .export import export, main_export
from .formats import FORMATS

__all__ = ["FORMATS", "AlerceQuery", "ObjectNotFoundError", "QueryError", "angular_distance", "connect",
           "export", "main_export"]
