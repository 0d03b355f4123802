"""The golden fixtures: their format (``format``), how the oracle builds and re-derives them (``generate``), and
how they become cases of the ``fixtures`` check (``replay``).

Imports: the oracle, the data model, the catalogue and the harness's files (schemas, atomic writes).
"""
