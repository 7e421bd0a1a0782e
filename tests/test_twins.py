"""Each ``_async`` twin is made from its method and shows the same name, signature and docs."""

from __future__ import annotations

import inspect

import pytest

from tinker_rest import RestClient

# The methods that return a future and have an `_async` twin: the seed's, then the official
# SDK's beyond it (search_sessions has none there, and none here).
TWINNED = [
    "get_training_run",
    "get_training_run_by_tinker_path",
    "get_weights_info_by_tinker_path",
    "list_training_runs",
    "list_checkpoints",
    "list_user_checkpoints",
    "delete_checkpoint",
    "delete_checkpoint_from_tinker_path",
    "get_checkpoint_archive_url",
    "get_checkpoint_archive_url_from_tinker_path",
    "publish_checkpoint_from_tinker_path",
    "unpublish_checkpoint_from_tinker_path",
    "set_checkpoint_ttl_from_tinker_path",
    "get_session",
    "list_sessions",
    "assign_session_project",
    "get_sampler",
    "get_audit_log",
    "whoami",
    "get_server_capabilities",
    "copy_weights",
    "get_external_weights_urls",
    "export_session_trace",
]
UNTWINNED = ["search_sessions"]


def test_every_future_method_is_listed() -> None:
    futures = {
        name
        for name, member in vars(RestClient).items()
        if inspect.isfunction(member)
        and not name.startswith("_")
        and inspect.signature(member).return_annotation.startswith("APIFuture[")
    }
    assert futures == {*TWINNED, *UNTWINNED}
    assert not any(hasattr(RestClient, f"{name}_async") for name in UNTWINNED)


@pytest.mark.parametrize("name", TWINNED)
def test_twin_has_the_methods_signature_returning_the_value(name: str) -> None:
    method = getattr(RestClient, name)
    twin = getattr(RestClient, f"{name}_async")
    assert inspect.iscoroutinefunction(twin)
    assert twin.__name__ == f"{name}_async"
    assert twin.__qualname__ == f"RestClient.{name}_async"
    sync, coro = inspect.signature(method), inspect.signature(twin)
    assert list(coro.parameters.values()) == list(sync.parameters.values())
    assert sync.return_annotation == f"APIFuture[{coro.return_annotation}]"
    assert twin.__annotations__["return"] == coro.return_annotation
    assert twin.__doc__.startswith(f"Coroutine twin of :meth:`{name}`")
    assert method.__doc__.split("\n")[0] in twin.__doc__
    assert f"{name}_async(self" in _help(RestClient)


def _help(cls: type) -> str:
    import pydoc

    return pydoc.render_doc(cls, renderer=pydoc.plaintext)
