"""Object labels and annotations copied into metric labels (``spec.labelsAllowlist`` /
``spec.annotationsAllowlist``), as kube-state-metrics' ``--metric-labels-allowlist`` does.

An allow-list holds keys (``team``) and globs (``app.kubernetes.io/*``, ``*`` for all, fnmatch
syntax, case-sensitive). Every object label whose key matches becomes a label
``label_<sanitized key>`` on every series of the configuration (annotations:
``annotation_<sanitized key>``); sanitizing replaces every character outside ``[a-zA-Z0-9_]``
with ``_``, as KSM's ``SanitizeLabelName``. They follow ``commonLabels``, sorted by label name.

Compiled once (``compile_allowlists``): exact keys become direct lookups, globs one regular
expression. Problems found at compile time: an empty entry, two exact keys that sanitize to the
same label name, and a configured label (commonLabels, a metric's labels, a states key) that an
entry could produce. Two object keys that a glob matches and that sanitize alike (``a.b`` and
``a_b``) can only be seen at run time: the first in key order wins, the other is skipped.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from exporter.naming import escape_label_value
from exporter.types import Problem

__all__ = ["ObjectLabelRenderer", "compile_allowlists", "label_could_collide", "object_label_getter",
           "sanitize"]

_INVALID = re.compile(r"[^a-zA-Z0-9_]")

# meta -> ',label_team="a",...' (in label-name order)
ObjectLabelRenderer = Callable[[Mapping[str, Any]], str]


def sanitize(key: str) -> str:
    """KSM's label-name sanitizing: every character outside ``[a-zA-Z0-9_]`` becomes ``_``."""
    return _INVALID.sub("_", key)


@dataclass(frozen=True, slots=True)
class _Allowlist:
    field: str  # "labels" | "annotations"
    prefix: str  # "label_" | "annotation_"
    exact: tuple[tuple[str, str], ...]  # (object key, ',label_x="') sorted by label name
    glob: re.Pattern[str] | None
    patterns: tuple[str, ...]  # the label-name globs it can produce (for collision checks)


def _compile_one(entries: Sequence[str], *, field: str, prefix: str, where: str,
                 problems: list[Problem]) -> _Allowlist | None:
    exact: dict[str, tuple[str, int]] = {}
    globs: list[str] = []
    patterns: list[str] = []
    for index, entry in enumerate(entries):
        if not entry:
            problems.append(Problem(path=f"{where}[{index}]", message="an empty key matches nothing"))
            continue
        if any(ch in entry for ch in "*?["):
            globs.append(fnmatch.translate(entry))
            # the label names it can produce: sanitize the literal parts, keep the wildcards
            patterns.append(prefix + "".join(ch if ch in "*?[]" else sanitize(ch) for ch in entry))
            continue
        name = prefix + sanitize(entry)
        if name in exact and exact[name][0] != entry:
            other_key, other_index = exact[name]
            problems.append(Problem(path=f"{where}[{index}]", message=(
                f"{entry!r} and {other_key!r} ({where}[{other_index}]) both become label {name!r}")))
            continue
        exact[name] = (entry, index)
        patterns.append(name)
    if not exact and not globs:
        return None
    ordered = tuple(sorted(((key, f',{name}="') for name, (key, _) in exact.items()),
                           key=lambda item: item[1]))
    glob = re.compile("|".join(f"(?:{g})" for g in globs)) if globs else None
    return _Allowlist(field=field, prefix=prefix, exact=ordered, glob=glob, patterns=tuple(patterns))


def label_could_collide(key: str, allowlists: Sequence[_Allowlist]) -> str | None:
    """The allow-list entry that could produce label ``key``, if any."""
    for allowlist in allowlists:
        for pattern in allowlist.patterns:
            if fnmatch.fnmatchcase(key, pattern):
                return pattern
    return None


LabelGetter = Callable[[Mapping[str, Any]], "str | None"]


def object_label_getter(name: str, allowlists: Sequence[_Allowlist]) -> LabelGetter:
    """meta -> the value the allow-lists give label ``name`` (``label_team``), or None: the same
    choice the renderer makes (an exact key; else the first matching key in key order)."""
    for allowlist in allowlists:
        if name.startswith(allowlist.prefix):
            getter = _getter(name[len(allowlist.prefix):], allowlist)
            if getter is not None:
                return getter
    return lambda meta: None


def _getter(suffix: str, allowlist: _Allowlist) -> LabelGetter | None:
    field, glob = allowlist.field, allowlist.glob
    exact = {key for key, _ in allowlist.exact}
    direct = next((key for key in exact if sanitize(key) == suffix), None)
    if glob is None:
        if direct is None:
            return None

        def exact_value(meta: Mapping[str, Any]) -> str | None:
            values = meta.get(field)
            value = values.get(direct) if isinstance(values, dict) else None
            return value if isinstance(value, str) else None

        return exact_value
    match = glob.fullmatch

    def glob_value(meta: Mapping[str, Any]) -> str | None:
        values = meta.get(field)
        if not isinstance(values, dict):
            return None
        for key in sorted(values):
            value = values[key]
            if isinstance(value, str) and (key in exact or match(key)) and sanitize(key) == suffix:
                return value
        return None

    return glob_value


def compile_allowlists(*, labels: Sequence[str], annotations: Sequence[str],
                       problems: list[Problem]) -> tuple[ObjectLabelRenderer | None, tuple[_Allowlist, ...]]:
    """The renderer of both allow-lists (None when both are empty) and the compiled lists."""
    compiled = tuple(
        allowlist for allowlist in (
            _compile_one(labels, field="labels", prefix="label_", where="spec.labelsAllowlist",
                         problems=problems),
            _compile_one(annotations, field="annotations", prefix="annotation_",
                         where="spec.annotationsAllowlist", problems=problems),
        ) if allowlist is not None
    )
    if not compiled:
        return None, ()
    renderers = tuple(_renderer(allowlist) for allowlist in compiled)
    if len(renderers) == 1:
        return renderers[0], compiled

    def render_both(meta: Mapping[str, Any]) -> str:
        return "".join(render(meta) for render in renderers)

    return render_both, compiled


def _renderer(allowlist: _Allowlist) -> ObjectLabelRenderer:
    field, exact, glob, prefix = allowlist.field, allowlist.exact, allowlist.glob, allowlist.prefix
    if glob is None:
        def render_exact(meta: Mapping[str, Any]) -> str:
            values = meta.get(field)
            if not isinstance(values, dict) or not values:
                return ""
            parts = []
            for key, key_open in exact:
                value = values.get(key)
                if isinstance(value, str):
                    parts.append(f'{key_open}{escape_label_value(value)}"')
            return "".join(parts)

        return render_exact
    exact_keys = {key for key, _ in exact}
    match = glob.fullmatch

    def render_glob(meta: Mapping[str, Any]) -> str:
        values = meta.get(field)
        if not isinstance(values, dict) or not values:
            return ""
        chosen: dict[str, str] = {}
        for key in sorted(values):
            value = values[key]
            if not isinstance(value, str) or not (key in exact_keys or match(key)):
                continue
            name = prefix + sanitize(key)
            if name not in chosen:  # two keys sanitizing alike: the first in key order wins
                chosen[name] = value
        return "".join(f',{name}="{escape_label_value(chosen[name])}"' for name in sorted(chosen))

    return render_glob
