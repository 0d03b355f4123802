"""The cases: what a candidate is run on, the one input generator and the one catalogue of named trajectories.

Imports: the oracle's formats and the data model.
"""
