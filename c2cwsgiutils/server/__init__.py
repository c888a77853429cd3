"""The gunicorn side's machinery: its settings, its logger, the master's identity, worker readiness.

Users name only ``c2cwsgiutils/gunicorn_config.py`` (``gunicorn -c``) and the ``c2cwsgiutils_run``
and ``c2cwsgiutils_reload`` commands; what they are built on lives here.
"""
