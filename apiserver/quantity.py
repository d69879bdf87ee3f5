"""``resource.Quantity`` strings for metric values (what the HPA parses). Pure.

The custom and external metrics APIs carry values as Kubernetes quantities, not JSON numbers.
Values are rounded to the nearest milli-unit (half away from zero), the precision the HPA works
in (it compares ``MilliValue()``s), and written in the canonical decimal-SI form the
kube-apiserver itself produces: the shortest exact mantissa with a suffix whose exponent is a
multiple of three (``2.5`` -> ``2500m``, ``3`` -> ``3``, ``2000`` -> ``2k``, ``1500000`` ->
``1500k``, ``0.0004`` -> ``0``). NaN and infinities have no quantity: ``NonFiniteValue``.
See k8s.io/apimachinery/pkg/api/resource (``Quantity.String``, ``CanonicalizeBytes``).
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

_SUFFIXES = {-3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}


class NonFiniteValue(ValueError):
    """NaN, +Inf or -Inf: not representable as a quantity (never sent to the HPA)."""


def milli_units(value: float) -> int:
    """``value`` in milli-units, rounded to the nearest (half away from zero)."""
    if not math.isfinite(value):
        raise NonFiniteValue(f"{value!r} is not a finite number")
    if value.is_integer():  # the common case (counts, replicas, phases): exact without Decimal
        return int(value) * 1000
    return int((Decimal(repr(value)) * 1000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_quantity(value: float) -> str:
    """The canonical decimal-SI quantity string of ``value`` at milli precision."""
    mantissa, exponent = milli_units(value), -3
    if mantissa == 0:
        return "0"
    while mantissa % 1000 == 0 and exponent < 18:
        mantissa //= 1000
        exponent += 3
    return f"{mantissa}{_SUFFIXES[exponent]}"
