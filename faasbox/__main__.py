"""`python -m faasbox` is the `faasbox` command."""

from faasbox.cli.main import main

main()
