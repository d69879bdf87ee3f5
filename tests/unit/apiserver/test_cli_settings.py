"""The command line is consistent, and ``panopticon serve``'s flags become one ``Settings`` object."""

from __future__ import annotations

import argparse
import dataclasses
import re

from apiserver.cli import build_parser
from apiserver.settings import Settings, comma_list
from exporter.cluster.options import ExporterOptions
from thanos_operator.service import OperatorOptions


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_flag_has_help_and_on_off_flags_are_boolean_optional() -> None:
    for name, parser in subparsers().items():
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"panopticon {name} {action.option_strings}: no help"
            assert not isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction), (
                f"panopticon {name} {action.option_strings}: use BooleanOptionalAction for on/off flags"
            )


def test_tuning_flags_quote_the_defaults_of_the_settings() -> None:
    serve = subparsers()["serve"]
    defaults = {
        "--status-interval": ExporterOptions.status_interval,
        "--resolve-interval": ExporterOptions.resolve_interval,
        "--watch-timeout": ExporterOptions.watch_timeout,
        "--request-timeout": Settings.request_timeout,
        "--resync-period": OperatorOptions.resync_period,
        "--leader-elect-lease-duration": OperatorOptions.lease_duration,
    }
    for action in serve._actions:
        for flag, value in defaults.items():
            if flag in action.option_strings:
                assert action.help is not None
                assert re.search(rf"default {value:g}\b", action.help), (flag, action.help)


def test_serve_flags_become_settings() -> None:
    args = build_parser().parse_args([
        "serve", "--namespaces", "a, b,,a", "--status-interval", "7", "--resync-period", "60",
        "--no-write-status", "--request-timeout", "5", "--no-leader-elect",
    ])
    settings = Settings.from_args(args)
    assert settings.exporter.namespaces == ("a", "b", "a") and settings.operator.namespaces == ("a", "b", "a")
    assert (settings.exporter.status_interval, settings.exporter.write_status) == (7.0, False)
    assert (settings.operator.resync_period, settings.operator.leader_elect) == (60.0, False)
    assert settings.request_timeout == 5.0
    # Flags not given keep the dataclass defaults (written once, on the fields).
    assert settings.exporter.resolve_interval == ExporterOptions().resolve_interval
    assert dataclasses.replace(settings.exporter, namespaces=(), status_interval=3.0, write_status=True) == (
        ExporterOptions()
    )
    default = Settings.from_args(build_parser().parse_args(["serve"]))
    assert default == Settings()


def test_old_flag_names_still_work() -> None:
    args = build_parser().parse_args(
        ["serve", "--metrics-address", "127.0.0.1:1", "--no-state-metrics-on-plain"]
    )
    assert (args.metrics_address, args.state_metrics_on_plain) == ("127.0.0.1:1", False)
    args = build_parser().parse_args(["serve", "--metrics-bind-address", "127.0.0.1:2"])
    assert args.metrics_address == "127.0.0.1:2" and args.state_metrics_on_plain


def test_comma_list() -> None:
    assert comma_list(" a,b , ,c ") == ("a", "b", "c")
    assert comma_list("") == comma_list(None) == ()
