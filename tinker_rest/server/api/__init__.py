"""The HTTP layer of the reference server: the app (:mod:`.main`), its dependencies
(:mod:`.deps`) and one router per resource (:mod:`.routes`)."""
