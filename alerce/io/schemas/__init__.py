"""Avro schemas written by this project (ZTF 4.02 as a Python dict)."""
