"""Independent checks that an exposition is valid: promtool, prometheus_client's parsers, and
the grouping/uniqueness rules neither of them enforces.

Used by every test that produces an exposition (unit, golden, HTTP). ``check_exposition``
returns the parsed families so a test can compare values with what it put in.

- Text 0.0.4: ``promtool check metrics`` (Debian package ``prometheus``) must parse it (exit 1
  = parse error fails the test); lint findings (exit 3) fail too unless the caller lists them in
  ``allowed_lint``. Then ``prometheus_client.parser`` must parse it.
- OpenMetrics: the strict OpenMetrics parser of prometheus_client must parse it (it requires
  ``# EOF``). promtool 2.42 only reads the text format, in which ``\\"`` is not a legal HELP
  escape; it is given the same body translated to text (HELP escaping, counter family names
  with ``_total``, no ``_created`` samples, no ``# EOF``), so the sample lines and grouping still
  go through promtool.
- Both: one HELP/TYPE per family, TYPE before the samples, all samples of a family contiguous,
  no duplicate (name, labels) pair, body ends with a newline.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

PROMTOOL_MISSING = ("promtool not found: install it with `apt-get install prometheus` "
                    "(or ./scripts/system-deps)")


@dataclass(frozen=True)
class Checked:
    families: dict[str, Metric]

    def samples(self, family: str) -> list[tuple[dict[str, str], float]]:
        return [(dict(s.labels), s.value) for s in self.families[family].samples]


def promtool(body: bytes) -> tuple[int, str]:
    exe = shutil.which("promtool")
    assert exe is not None, PROMTOOL_MISSING
    proc = subprocess.run([exe, "check", "metrics"], input=body, capture_output=True, timeout=60)
    return proc.returncode, (proc.stdout + proc.stderr).decode(errors="replace")


_OM_HELP = re.compile(rb"^# HELP (\S+) (.*)$", re.M)


def _om_help_to_text(body: bytes) -> bytes:
    def fix(m: re.Match[bytes]) -> bytes:
        text = m.group(2).decode()
        out, i = [], 0
        while i < len(text):
            if text[i] == "\\" and i + 1 < len(text):
                out.append("\\\\" if text[i + 1] == "\\" else "\\n" if text[i + 1] == "n" else text[i + 1])
                i += 2
            else:
                out.append(text[i])
                i += 1
        return b"# HELP " + m.group(1) + b" " + "".join(out).encode()

    assert body.endswith(b"# EOF\n")
    text = _OM_HELP.sub(fix, body[: -len(b"# EOF\n")]).decode()
    # OpenMetrics counters are announced without their _total suffix and carry _created samples;
    # the text format announces the sample name and has no _created: translate those families.
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.M))
    out = []
    for line in text.split("\n"):
        if line.startswith(("# HELP ", "# TYPE ")):
            _, kind, name, rest = line.split(" ", 3)
            if types.get(name) == "counter":
                line = f"# {kind} {name}_total {rest}"
            elif kind == "TYPE" and rest == "unknown":
                line = f"# TYPE {name} untyped"
        elif re.match(r"^(\S+?)_created[{ ]", line):
            base = re.match(r"^(\S+?)_created[{ ]", line).group(1)  # type: ignore[union-attr]
            if types.get(base) in ("counter", "histogram", "summary"):
                continue
        out.append(line)
    return "\n".join(out).encode()


def check_structure(body: bytes, *, openmetrics: bool) -> None:
    text = body.decode("utf-8")
    assert text == "" or text.endswith("\n"), "exposition must end with a newline"
    if openmetrics:
        assert text.endswith("# EOF\n"), "OpenMetrics exposition must end with # EOF"
        assert text.count("# EOF") == 1, "exactly one # EOF"
    seen_help: set[str] = set()
    seen_type: set[str] = set()
    finished: set[str] = set()
    current: str | None = None
    series: set[str] = set()
    for line in text.split("\n"):
        if not line or line == "# EOF":
            continue
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            name = line.split(" ", 3)[2]
            seen = seen_help if line.startswith("# HELP ") else seen_type
            assert name not in seen, f"second {line[:6]} for {name}"
            seen.add(name)
            if current is not None and current != name:
                finished.add(current)
            assert name not in finished, f"family {name} is not one contiguous group"
            current = name
            continue
        assert not line.startswith("#"), f"unexpected comment {line!r}"
        name = re.split(r"[{ ]", line, maxsplit=1)[0]
        family = current if current is not None and name.startswith(current) else name
        assert family == current, f"sample {name} outside its family block (current {current})"
        assert family in seen_type, f"sample of {family} before its TYPE"
        key = line.rsplit(" ", 1)[0]
        assert key not in series, f"duplicate series {key}"
        series.add(key)


def check_exposition(body: bytes, *, openmetrics: bool = False,
                     allowed_lint: tuple[str, ...] = ()) -> Checked:
    """Run every check on ``body``; return the parsed families keyed by name."""
    check_structure(body, openmetrics=openmetrics)
    text_body = _om_help_to_text(body) if openmetrics else body
    code, output = promtool(text_body)
    assert code in (0, 3), f"promtool check metrics failed to parse (exit {code}):\n{output}"
    problems = [line for line in output.splitlines()
                if line.strip() and not any(allowed in line for allowed in allowed_lint)]
    assert not problems, "promtool lint problems:\n" + "\n".join(problems)
    parser = parse_openmetrics if openmetrics else parse_text
    families = {f.name: f for f in parser(body.decode("utf-8"))}
    if not openmetrics:
        # Cross-check: the text parser must agree with the text handed to promtool.
        assert families.keys() == {f.name for f in parse_text(text_body.decode("utf-8"))}
    return Checked(families)
