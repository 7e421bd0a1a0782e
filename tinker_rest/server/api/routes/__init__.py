"""One router per resource (per tag of the spec); :mod:`tinker_rest.server.api.main` includes
each with one line."""
