"""The ``tinker-rest`` command line.

``main`` is the console script; ``cli`` is the click group, for embedding and for tests::

    tinker-rest [--base-url URL] [--api-key KEY] [-f table|json] COMMAND ...

Commands: ``version``, ``auth``, ``run``, ``checkpoint``, ``session``, ``sampler``, ``audit``,
and the reference server's ``serve`` and ``admin``, whose server stack is imported only when
they run (their ``--help`` works without the ``server`` extra).
"""

from tinker_rest.cli._app import cli, main

__all__ = ["cli", "main"]
