"""The checks: how a candidate's states are judged.

``compare`` (the oracle run on a spec, and the ratio of every element to its budget), ``numeric`` (the
trajectory, one-step and fixture judgements), ``deviations`` and ``diagnosis`` (the catalogue of known
porting bugs and the matching of a failure to one), ``explore`` (hypothesis over whole trajectories) and
``api`` (API and configuration compatibility with Keras, run inside the candidate's worker).

Imports: the oracle, the data model, the cases and the golden fixtures; never the candidates' client or the
runner (a check is given states, or a function that runs a spec).
"""
