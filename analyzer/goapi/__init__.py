"""Go, moby and docker/cli API emulation: the ground floor.

One module per Go package (``time``, ``strconv``, moby's ``api/types/filters`` and
``api/types/time``, docker/cli's ``opts``, docker/go-units), keeping Go's behaviour
to the byte. Imports nothing of analyzer's but ``analyzer.errors``.
"""
