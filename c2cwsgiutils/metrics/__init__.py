"""The metrics' machinery: outgoing calls' timing and the merge of the Prometheus workers' files.

The API is :mod:`c2cwsgiutils.stats`, :mod:`c2cwsgiutils.stats_pyramid` and
:mod:`c2cwsgiutils.prometheus`.
"""
