"""Request body parsers for the API: DRF's JSON parser with every malformed body a 400.

A JSON document nested deeper than Python's recursion limit (``[[[[...]]]]`` 100,000 deep is 200 kB,
well within the body limit) makes the decoder raise RecursionError, which DRF does not catch (a 500).
Here it is a ParseError, in the API's one error shape. Body size is bounded before any parser runs
(planner.corpus.uploads.UploadLimitMiddleware: 413 naming the limit).
"""
from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None
