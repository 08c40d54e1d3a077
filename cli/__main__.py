"""`python -m parktwin.cli` (installed) and `python -m cli` (in the repository)."""

from . import console_main

console_main()
