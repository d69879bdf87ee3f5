"""``panopticon render`` for ``Thanos`` files, with no cluster: the objects the operator would apply.

The pure renderer with static hashring membership (there are no Endpoints offline), as one YAML
stream. Validation problems are reported before, in ``panopticon check``'s shape
(``thanos_operator.review``, ``apiserver.commands.check.thanos_lines``), so both commands say
the same thing about the same file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from thanos_operator.models import parse_thanos
from thanos_operator.render import render


def render_yaml(objects: Sequence[Mapping[str, Any]]) -> str:
    """The desired children of every (valid) ``Thanos`` object, in apply order, as YAML."""
    rendered = [child for obj in objects for child in render(parse_thanos(dict(obj)))]
    return yaml.safe_dump_all(rendered, sort_keys=False, width=120)
