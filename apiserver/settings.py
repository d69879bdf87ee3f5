"""``panopticon serve``'s settings: one frozen object, built once from the flags, passed down.

Each part of the process keeps its own frozen options type beside the code that uses it
(``exporter.cluster.ExporterOptions``, ``thanos_operator.options.OperatorOptions``); ``Settings``
holds one of each plus the process-wide numbers, and ``Settings.from_args`` is the only place
that reads the exporter's and the operator's flags (the extension API server's own flags, TLS
and authentication, are read by ``apiserver.https``). The defaults live on the dataclass
fields, each with a comment; ``docs/live-exporter.md`` and ``docs/thanos.md`` ("Settings",
operator flags) list them with their flags (not every number needs a flag: those without one
are tuning for tests and benchmarks).
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from exporter.cluster.options import ExporterOptions
from thanos_operator.options import OperatorOptions

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


def comma_list(text: str | None) -> tuple[str, ...]:
    """``"a, b,,c"`` -> ``("a", "b", "c")`` (the form of every comma-separated flag)."""
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    request_timeout: float = 30.0  # every request of the shared API client (seconds)
    exporter: ExporterOptions = field(default_factory=ExporterOptions)
    operator: OperatorOptions = field(default_factory=OperatorOptions)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Settings:
        """The settings ``panopticon serve``'s parsed flags ask for; the defaults for the rest.

        Tuning flags default to ``None`` in the parser, meaning "the field's default here", so
        each default is written once (the help texts quote them; a unit test keeps them equal).
        """
        namespaces = comma_list(args.namespaces)
        same_name = ("namespace_selector", "shard", "total_shards", "status_interval", "resolve_interval",
                     "watch_timeout", "write_status")
        exporter = _replace(ExporterOptions(), namespaces=namespaces, **_flags(args, same_name))
        operator = _replace(
            OperatorOptions(), namespaces=namespaces, lease_namespace=args.leader_elect_namespace,
            lease_duration=args.leader_elect_lease_duration,
            **_flags(args, ("leader_elect", "watch_namespace", "resync_period")),
            default_image=args.thanos_default_image or None,
            default_envoy_image=args.envoy_default_image or None,
        )
        return _replace(cls(exporter=exporter, operator=operator), request_timeout=args.request_timeout)


def _flags(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, Any]:
    """The flags whose destination has the name of the settings field they set."""
    return {name: getattr(args, name) for name in names}


def _replace(options: T, **changes: Any) -> T:
    """``dataclasses.replace`` for the flags that were given (``None``: keep the default)."""
    return dataclasses.replace(options, **{k: v for k, v in changes.items() if v is not None})
