"""The conformance harness: candidates, checks, the runner, the report and the ``optconf`` command line.

Subpackages by job, imports flowing one way: the oracle (``reference``) ← :mod:`.model` ← :mod:`.cases`,
:mod:`.golden` ← :mod:`.checks` ← :mod:`.runner` ← :mod:`.cli` and :mod:`.pytest_plugin`.  The candidates'
worker side (:mod:`.candidates.server`, the engines) imports the checks (the API checks run next to the
candidate); the client (:mod:`.candidates.client`) imports the data model only.
"""
