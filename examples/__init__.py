"""Example programs that use hub_tf1; not part of the library.

A regular package, so that `python -m examples.<name>` from the repository
root finds these sources even if some installed distribution has a top-level
`examples` of its own.  `text_classification/job.py` is a stand-alone script
(`python examples/text_classification/job.py`), not a module of this package.
"""
