"""``python -m stream``: the ``xsell`` CLI."""

from stream.cli import main

main()
