"""The command line's larger command groups, each wired into `posttrain.cli.build_parser`.

Like `cli.py`, these modules are the only library code that prints; they call into
the stages, `serving`, `labeling` and `evaluation` and turn their results into terminal output.
"""
