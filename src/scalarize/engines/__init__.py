"""Engines: where the members of a search and the planned runs of a study train (in this
process, side by side on this machine, or on Ray), behind one
:class:`~scalarize.engines.executors.Engine`."""
