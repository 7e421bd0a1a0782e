"""``python -m tinker_rest.cli``: the same as the ``tinker-rest`` command."""

from tinker_rest.cli._app import main

main()
