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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from exporter.naming import escape_label_value
from exporter.types import Problem

__all__ = ["ObjectLabelRenderer", "collision_source", "compile_allowlists", "label_could_collide",
           "object_label_getter", "sanitize"]

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
    flagged: frozenset[str] = frozenset()  # patterns that only the global flag added


def _compile_one(entries: Sequence[str], *, field: str, prefix: str, where: str, problems: list[Problem],
                 flag_entries: Sequence[str] = (), flag: str = "") -> _Allowlist | None:
    """``entries`` (the configuration's, at ``where[i]``) then ``flag_entries`` (the global
    ``flag``'s for this target; a key both give is listed once)."""
    exact: dict[str, tuple[str, int]] = {}
    globs: list[str] = []
    patterns: list[str] = []
    flagged: set[str] = set()
    own = len(entries)
    extra = [entry for entry in flag_entries if entry not in entries]

    def source(index: int) -> str:
        return f"{where}[{index}]" if index < own else flag

    for index, entry in enumerate([*entries, *extra]):
        at = f"{where}[{index}]" if index < own else where
        if not entry:
            problems.append(Problem(path=at, message="an empty key matches nothing"))
            continue
        if any(ch in entry for ch in "*?["):
            globs.append(fnmatch.translate(entry))
            # the label names it can produce: sanitize the literal parts, keep the wildcards
            patterns.append(prefix + "".join(ch if ch in "*?[]" else sanitize(ch) for ch in entry))
            if index >= own:
                flagged.add(patterns[-1])
            continue
        name = prefix + sanitize(entry)
        if name in exact and exact[name][0] != entry:
            other_key, other_index = exact[name]
            shown = repr(entry) if index < own else f"{entry!r} ({flag})"
            problems.append(Problem(path=at, message=(
                f"{shown} and {other_key!r} ({source(other_index)}) both become label {name!r}")))
            continue
        exact[name] = (entry, index)
        patterns.append(name)
        if index >= own:
            flagged.add(name)
    if not exact and not globs:
        return None
    ordered = tuple(sorted(((key, f',{name}="') for name, (key, _) in exact.items()),
                           key=lambda item: item[1]))
    glob = re.compile("|".join(f"(?:{g})" for g in globs)) if globs else None
    return _Allowlist(field=field, prefix=prefix, exact=ordered, glob=glob, patterns=tuple(patterns),
                      flagged=frozenset(flagged))


def label_could_collide(key: str, allowlists: Sequence[_Allowlist]) -> str | None:
    """The allow-list entry that could produce label ``key``, if any."""
    return next((pattern for pattern, _ in _producers(key, allowlists)), None)


def collision_source(key: str, allowlists: Sequence[_Allowlist]) -> str:
    """Where the entry that could produce ``key`` comes from: the spec fields, or the global flag."""
    for pattern, allowlist in _producers(key, allowlists):
        if pattern in allowlist.flagged:
            return FLAGS[allowlist.field]
        break
    return "spec.labelsAllowlist/annotationsAllowlist"


def _producers(key: str, allowlists: Sequence[_Allowlist]) -> Iterator[tuple[str, _Allowlist]]:
    for allowlist in allowlists:
        for pattern in allowlist.patterns:
            if fnmatch.fnmatchcase(key, pattern):
                yield pattern, allowlist


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


FLAGS = {"labels": "--metric-labels-allowlist", "annotations": "--metric-annotations-allowlist"}


def compile_allowlists(*, labels: Sequence[str], annotations: Sequence[str], problems: list[Problem],
                       flag_labels: Sequence[str] = (), flag_annotations: Sequence[str] = (),
                       ) -> tuple[ObjectLabelRenderer | None, tuple[_Allowlist, ...]]:
    """The renderer of both allow-lists (None when both are empty) and the compiled lists.

    ``flag_labels`` / ``flag_annotations``: what the global flags (``exporter.metriclabels``)
    add for this configuration's target, checked and rendered as if listed after its own."""
    compiled = tuple(
        allowlist for allowlist in (
            _compile_one(labels, field="labels", prefix="label_", where="spec.labelsAllowlist",
                         problems=problems, flag_entries=flag_labels, flag=FLAGS["labels"]),
            _compile_one(annotations, field="annotations", prefix="annotation_",
                         where="spec.annotationsAllowlist", problems=problems,
                         flag_entries=flag_annotations, flag=FLAGS["annotations"]),
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
