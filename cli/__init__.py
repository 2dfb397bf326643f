"""`adq`, the command line: the parser (``parser``) and its handlers, one module per topic (``jobs``, ``services``,
``models``, ``ops``, ``bench``), each a public function that takes the parsed arguments and returns an exit code."""

from adq.cli.parser import build_parser, main

__all__ = ["build_parser", "main"]
