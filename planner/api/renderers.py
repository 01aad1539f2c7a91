"""DRF's browsable API, allowed the inline styles its templates use (style attributes, Pygments CSS).

Only these HTML pages of the API get 'unsafe-inline' for styles, and only for
styles (no inline script anywhere): everything else keeps the strict policy of
settings.CONTENT_SECURITY_POLICY. Clients that ask for JSON never get HTML.
"""
from rest_framework import renderers


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is not None:
            response._csp_update = {"style-src": ["'unsafe-inline'"]}  # read by csp.middleware.CSPMiddleware
        return super().render(data, accepted_media_type, renderer_context)
