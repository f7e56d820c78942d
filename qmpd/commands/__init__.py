"""QMP commands: translate QMP arguments into engine calls and engine errors
into QMP errors.  ``registry`` holds the table; each family module registers
its handlers with the ``@command`` decorator."""
