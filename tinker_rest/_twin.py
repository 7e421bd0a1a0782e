"""The ``_async`` twin of a future-returning method, made from the one definition.

Each operation of :class:`~tinker_rest.RestClient` is written once, as a method returning an
:class:`~tinker_rest.APIFuture`; ``name_async = async_twin(name)`` in the class body gives the
coroutine form (huggingface_hub's ``@future_compatible`` does the same the other way round).
The twin keeps the method's parameters, names and defaults for ``help()``, ``inspect`` and
``mypy`` (through ``ParamSpec``), and returns the future's value instead of the future.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

from tinker_rest._futures import APIFuture

__all__ = ["async_twin"]

P = ParamSpec("P")
T = TypeVar("T")
S = TypeVar("S")

# The return annotation of a future-returning method, as ``from __future__ import annotations``
# leaves it: a string.
_FUTURE = re.compile(r"APIFuture\[(?P<value>.+)\]")


def async_twin(
    method: Callable[Concatenate[S, P], APIFuture[T]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """The coroutine twin of ``method``: same parameters, awaits the future it returns.

    Args:
        method: a method returning an ``APIFuture``, as written in the class body.

    Returns:
        A coroutine function named ``<method>_async``, with the method's signature except that
        it returns the future's value, and a docstring that points back to the method.
    """

    @functools.wraps(method)
    async def twin(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await method(self, *args, **kwargs)

    name = f"{method.__name__}_async"
    twin.__name__ = name
    twin.__qualname__ = f"{method.__qualname__}_async"
    signature = inspect.signature(method)
    returns = signature.return_annotation
    if isinstance(returns, str) and (match := _FUTURE.fullmatch(returns)):
        returns = match["value"]
    twin.__signature__ = signature.replace(return_annotation=returns)  # type: ignore[attr-defined]
    twin.__annotations__ = {**method.__annotations__, "return": returns}
    summary, _, details = (method.__doc__ or "").partition("\n")
    twin.__doc__ = (
        f"Coroutine twin of :meth:`{method.__name__}`: returns the value, not a future.\n\n"
        f"{summary}\n{details}"
    )
    return twin
