"""The Ray executor: each function's execution environments are Ray actors on a cluster's
nodes, each hosting faasbox's own process executor there (`faasbox serve --ray ADDRESS`).

- host.py: the actor, one per execution environment (its resources are the environment's,
  so Ray's accounting of a node is exact), hosting a local ProcessExecutor of one worker.
- channel.py: the direct TCP channel from the gateway to each host actor that invocations
  take (Ray places, stops and watches the actor; a secret per actor guards the channel).
- code.py: a function's code and layers reach a node by hash, through Ray's object store,
  unpacked once into the node's cache.
- placement.py: what an environment asks of a node (CPU, memory, GPU, custom resources).
- ledger.py: reservedConcurrency and provisionedConcurrency counted cluster-wide.
- pool.py: the gateway's environments of each function version: scale up on queueing,
  down on idleness, replaced when their actor or node dies.
- executor.py: the Executor (faasbox.execution.api) the runtime registry swaps in for the
  process executor when `--ray` is given.

Nothing imports ray unless `--ray` is given (`pip install faasbox[ray]`).
"""
