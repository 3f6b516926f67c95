"""The test oracle: the real Docker daemon builds data roots, the real CLI's output is the truth.

- ``daemon``: a private dockerd (and a loopback registry) in fresh temporary directories.
- ``build``: layer tars, image configs and ``docker load`` archives made with ``tarfile``.
- ``scenarios``: populate a running daemon into a realistic data root.
- ``record``: run Docker commands once, snapshot the root, and compare ``analyze`` with them.
- ``make_sample``: the small sample root shipped in ``examples/``.
"""
