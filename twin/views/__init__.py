"""Presentation of each command's results: rich tables and note lines, one module per thing
presented (run, compare, sweep, regress, locking, optimize). The CLI (`parktwin.cli`) parses
arguments, calls twin.api and prints what these return; a notebook or another front end can
print the same tables. Each module is imported lazily by its command (rich and the figure
registry only, never the simulation stack at import)."""
