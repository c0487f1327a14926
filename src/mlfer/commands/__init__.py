"""Sub-commands of the ``mlfer`` command line, one module each (see :mod:`mlfer.cli`)."""
