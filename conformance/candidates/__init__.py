"""Candidates: the implementations under test, each run in a worker process of its own.

``protocol`` (the adapter protocol a port implements), ``client`` (the harness's side: start a worker,
send it specs with a deadline per call, restart it when it is lost), ``server`` (the worker's side: the
JSON-lines loop) with ``channel`` (its announcements), and ``engines`` (one per kind of candidate: real
Keras or a Keras-style class, a ``tf_keras`` legacy optimizer, an adapter).

Imports: the client imports the data model only; the server and the engines import the checks (the API
checks run next to the candidate) and the data model.
"""
