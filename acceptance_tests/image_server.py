"""Moved to :mod:`c2cwsgiutils.acceptance.image`; kept so that imports of the old place still work."""

from c2cwsgiutils.acceptance.image import BUILDAH_ENV, ImageServer, buildah, image_config

__all__ = ["BUILDAH_ENV", "ImageServer", "buildah", "image_config"]
