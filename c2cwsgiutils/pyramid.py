"""The one include that switches on every configured c2cwsgiutils feature.

In the app's WSGI main::

    import c2cwsgiutils.pyramid
    config.include(c2cwsgiutils.pyramid.includeme)

Each feature also has its own ``includeme``, for an app that wants only some of them. Including
any of them more than once is harmless.
"""

from pyramid.config import Configurator

# Order matters only for readability: each feature resolves its own settings and places its
# own tweens explicitly.
FEATURES = (
    # The client's address, scheme and host from the trusted proxies: its tween is the topmost.
    "c2cwsgiutils.client_info",
    "c2cwsgiutils.ops_views",
    # The GitHub sign-in of the ops views: routes only when C2C_AUTH_GITHUB_* configure it.
    "c2cwsgiutils.auth_github",
    # Starts the broadcast transport; a feature that subscribes later applies the stored calls then.
    "c2cwsgiutils.broadcast",
    "c2cwsgiutils.request_tracking",
    "c2cwsgiutils.errors",
    # The fast_json renderer (orjson) that upstream's apps name in their views.
    "c2cwsgiutils.pretty_json",
    # The app's cornice services (services.create): cornice itself only once one is registered.
    "c2cwsgiutils.services",
    "c2cwsgiutils.logging_view",
    # SQLAlchemy is imported only when C2C_SQL_REQUEST_ID or SQL_PROFILER_SECRET is set.
    "c2cwsgiutils.db",
    "c2cwsgiutils.sql_profiler",
    # Metrics: the backends of the settings; the tween only when one of them is on.
    "c2cwsgiutils.stats_pyramid",
    # The default timeout of the requests calls made while serving a request.
    "c2cwsgiutils.metrics.outgoing",
    # {C2C_BASE_PATH}/health (liveness); the full checks come with the app's HealthCheck(config).
    "c2cwsgiutils.health_check",
    # After the metrics: the version is exported as a metric when a backend is on.
    "c2cwsgiutils.versions",
    "c2cwsgiutils.debug",
    # Error reports (SENTRY_URL); sentry-sdk is imported only when it is set.
    "c2cwsgiutils.sentry",
)


def includeme(config: Configurator) -> None:
    """Include every feature; each one switches itself on only if its settings ask for it."""
    for feature in FEATURES:
        config.include(feature)
