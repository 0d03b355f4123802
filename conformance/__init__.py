"""The conformance harness: candidates, checks and the ``optconf`` command line."""
