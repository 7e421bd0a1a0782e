"""``tinker-rest serve`` and ``tinker-rest admin`` live in :mod:`tinker_rest.cli._server`.

They moved there so that their ``--help`` works without the ``server`` extra (importing this
package imports FastAPI and SQLAlchemy); this module keeps the old import path working.
"""

from tinker_rest.cli._server import admin, serve

__all__ = ["admin", "serve"]
