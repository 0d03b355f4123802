"""The golden fixtures: their format (``format``), how the oracle builds and re-derives them (``generate``), and
how they become cases of the ``fixtures`` check (``replay``).

Imports: the oracle, the data model and the catalogue.
"""
