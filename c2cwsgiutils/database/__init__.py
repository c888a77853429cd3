"""The database sessions' machinery: primary/replica routing and the read-only maintenance switch.

The API is :mod:`c2cwsgiutils.db`.
"""
