"""One module per ``chairside`` sub-command: ``add_arguments(parser)`` and ``run(args) -> int``.

Owns: argument parsing and output formatting of each command. Commands may import any
chairside package (they are part of the cli layer) but should import heavy things
(textual, numpy, simulators) inside ``run`` so ``chairside --help`` stays fast.
"""
