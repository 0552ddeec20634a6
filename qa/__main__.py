"""`python -m qa` runs the command-line tool."""

from .cli import main

main()
