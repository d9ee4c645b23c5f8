"""Sweep specs: parameters x variables (Cartesian product), ``${name}`` references, CLI overrides.

A spec is YAML or JSON (the DLBS experimenter's model, with a safe subset)::

    command: scan direct          # scan direct | scan multiproc | scan server | load
    timeout: 600                  # seconds per experiment (default 3600)
    parameters:                   # the same in every experiment
      model: mlp
      trials: 20
      exp.note: "${model} at b=${batch_sizes}"
    variables:                    # one experiment per combination; the first varies slowest
      batch_sizes: [1, 8]
      backend: [torch, onnx]

Every parameter or variable whose name has no dot becomes a flag of the command: ``name_x: v`` →
``--name-x v`` (one letter: ``-b v``; ``true`` → bare flag; ``false``/null → left out; a list → the flag
repeated). Dotted names (``exp.note``) are only for references and reports. ``${name}`` inside a string
is replaced by that parameter's value (nested: ``${${device}.image}``; a name defined nowhere falls back to
the environment); a string that is exactly one reference keeps the value's type. Built-ins:
``${exp.index}``, ``${exp.id}``, ``${exp.dir}``, ``${sweep.dir}``. Unknown or circular references are one
line each. ``$(expr)$`` computes plain arithmetic once references are replaced (no ``eval``), e.g.
``exp.effective_batch: "$(${b} * ${processes})$"``; a string that is one expression keeps the number type.
``-P name=value`` sets a parameter, ``-V name=v1,v2`` a variable (values YAML-parsed).
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import json
import operator
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from saturate.errors import ConfigError

COMMANDS: dict[str, tuple[str, ...]] = {
    "scan direct": ("scan", "direct"),
    "scan multiproc": ("scan", "multiproc"),
    "scan server": ("scan", "server"),
    "load": ("load",),
}
SPEC_KEYS: frozenset[str] = frozenset({"command", "timeout", "parameters", "variables", "description"})
RESERVED: frozenset[str] = frozenset({"out", "json", "json_file"})
DEFAULT_TIMEOUT_S = 3600.0
_REF = re.compile(r"\$\{([^${}]*)\}")
_MAX_STEPS = 10_000


@dataclass(frozen=True)
class Spec:
    """A parsed spec: command, per-experiment timeout, parameters and variables (in order)."""

    command: str
    parameters: Mapping[str, Any]
    variables: Mapping[str, Sequence[Any]]
    timeout_s: float = DEFAULT_TIMEOUT_S
    source: str = "<spec>"


@dataclass(frozen=True)
class Experiment:
    """One planned run: its index, stable id, resolved parameters and the command line after ``saturate``."""

    index: int
    id: str
    params: Mapping[str, Any]
    argv: tuple[str, ...]
    out_dir: Path
    combination: Mapping[str, Any] = field(default_factory=dict)


def _fail(source: str, what: str) -> ConfigError:
    return ConfigError(f"sweep spec {source}: {what}")


def parse_spec_text(text: str, source: str = "<spec>") -> Spec:
    """Parse YAML/JSON text into a :class:`Spec`; a malformed spec is one ConfigError line."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise _fail(source, f"not valid YAML/JSON{where} ({problem}); fix the syntax") from None
    if not isinstance(doc, dict):
        raise _fail(source, "must be a mapping with 'command', 'parameters' and 'variables'")
    unknown = sorted(str(k) for k in doc if k not in SPEC_KEYS)
    if unknown:
        raise _fail(source, f"unknown key {unknown[0]!r}; use {', '.join(sorted(SPEC_KEYS))}")
    command = doc.get("command")
    if command not in COMMANDS:
        raise _fail(source, f"'command' is {command!r}; use one of: {', '.join(COMMANDS)}")
    params = doc.get("parameters") or {}
    variables = doc.get("variables") or {}
    if not isinstance(params, dict) or not isinstance(variables, dict):
        raise _fail(source, "'parameters' and 'variables' must be mappings of name: value")
    timeout = doc.get("timeout", DEFAULT_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise _fail(source, f"'timeout' is {timeout!r}; give positive seconds")
    vars_: dict[str, list[Any]] = {}
    for name, values in variables.items():
        vals = list(values) if isinstance(values, list) else [values]
        if not vals:
            raise _fail(source, f"variable {name!r} has no values")
        vars_[str(name)] = vals
    for name in [*params, *vars_]:
        _check_name(str(name), source)
    return Spec(str(command), {str(k): v for k, v in params.items()}, vars_, float(timeout), source)


def _check_name(name: str, source: str) -> None:
    if not name or not re.fullmatch(r"-{0,2}[A-Za-z_][\w.\-]*", name):
        raise _fail(source, f"parameter name {name!r} is not a plain name (letters, digits, _ . -)")
    if name.lstrip("-").replace("-", "_") in RESERVED:
        raise _fail(source, f"parameter {name!r} is set by the sweep itself "
                            "(each run gets its own directory)")


def load_spec(path: Path) -> Spec:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read sweep spec {path} ({exc.strerror}); "
                          "give an existing YAML/JSON file") from None
    return parse_spec_text(text, str(path))


def _scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        return text


def _split_override(item: str, flag: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name.strip():
        raise ConfigError(f"{flag} {item!r}: expected NAME=VALUE, e.g. {flag} batch_sizes=4")
    return name.strip(), value


def apply_overrides(spec: Spec, params: Sequence[str] = (), variables: Sequence[str] = ()) -> Spec:
    """``-P name=value`` (fixed, replaces a variable of that name) and ``-V name=v1,v2`` (values list)."""
    p = dict(spec.parameters)
    v = {k: list(vals) for k, vals in spec.variables.items()}
    for item in params:
        name, value = _split_override(item, "-P")
        _check_name(name, "-P")
        v.pop(name, None)
        p[name] = _scalar(value)
    for item in variables:
        name, value = _split_override(item, "-V")
        _check_name(name, "-V")
        parsed = _scalar(value) if value.strip().startswith("[") else [_scalar(x) for x in value.split(",")]
        vals = parsed if isinstance(parsed, list) else [parsed]
        if not vals:
            raise ConfigError(f"-V {item!r} gives no values")
        p.pop(name, None)
        v[name] = vals
    return Spec(spec.command, p, v, spec.timeout_s, spec.source)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(_text(x) for x in value)
    if value is None:
        return ""
    return str(value)


class _Resolver:
    """Resolves ``${...}`` in every value of one experiment (memoised, cycle-checked)."""

    def __init__(self, values: Mapping[str, Any], env: Mapping[str, str]) -> None:
        self.values = values
        self.env = env
        self.done: dict[str, Any] = {}

    def get(self, name: str, stack: list[str]) -> Any:
        if name in self.done:
            return self.done[name]
        if name in stack:
            loop = [*stack[stack.index(name):], name]
            raise ConfigError(f"circular reference: {' -> '.join('${' + n + '}' for n in loop)}; "
                              "break the cycle in the sweep spec")
        if name not in self.values:
            if name in self.env:
                return self.env[name]
            where = f" in {stack[-1]!r}" if stack else ""
            raise ConfigError(f"unknown reference ${{{name}}}{where}; define {name!r} under parameters or "
                              "variables, or set it in the environment")
        value = self.expand(self.values[name], [*stack, name])
        self.done[name] = value
        return value

    def expand(self, value: Any, stack: list[str]) -> Any:
        if isinstance(value, str):
            return self.expand_text(value, stack)
        if isinstance(value, list):
            return [self.expand(x, stack) for x in value]
        if isinstance(value, dict):
            return {k: self.expand(x, stack) for k, x in value.items()}
        return value

    def expand_text(self, text: str, stack: list[str]) -> Any:
        for _ in range(_MAX_STEPS):
            m = _REF.search(text)
            if m is None:
                if "${" in text:
                    raise ConfigError(f"unclosed reference in {text!r} ({stack[-1] if stack else 'value'}); "
                                      "write ${name}")
                return compute(text, stack[-1] if stack else "a value")
            name = m.group(1).strip()
            if not name:
                raise ConfigError(f"empty reference ${{}} in {stack[-1] if stack else 'a value'!r}")
            value = self.get(name, stack)
            if m.start() == 0 and m.end() == len(text):
                return value
            text = text[:m.start()] + _text(value) + text[m.end():]
        where = stack[-1] if stack else "a value"
        raise ConfigError(f"references in {where!r} do not settle; check for a loop")


_EXPR = re.compile(r"\$\((.+?)\)\$")
_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: lambda a, b: _pow(a, b),
}
#: Bound on any number an expression computes (digits): `9**9**9**9` must fail at once, not hang.
MAX_DIGITS = 300


def _pow(base: Any, exp: Any) -> Any:
    """``base ** exp`` when the result stays under MAX_DIGITS digits, else ValueError (checked first)."""
    import math

    b = abs(float(base)) if abs(base) < 10**MAX_DIGITS else math.inf
    if b > 1 and (abs(exp) > 10 * MAX_DIGITS or float(exp) * math.log10(b) > MAX_DIGITS):
        raise ValueError(f"a power above 10**{MAX_DIGITS}")
    return operator.pow(base, exp)


def _bounded(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > MAX_DIGITS * 3.33:
        raise ValueError(f"a number above 10**{MAX_DIGITS}")
    return value
_FUNCS: dict[str, Callable[..., Any]] = {"min": min, "max": max, "int": int, "round": round}


def _eval(node: ast.AST) -> Any:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _bounded(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _bounded(_BINOPS[type(node.op)](_eval(node.left), _eval(node.right)))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _eval(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS
            and not node.keywords):
        return _FUNCS[node.func.id](*(_eval(a) for a in node.args))
    raise ValueError(type(node).__name__)


def compute(text: str, where: str) -> Any:
    """Evaluate every ``$(expr)$`` in ``text``: arithmetic on numbers and min/max/int/round only (no eval)."""
    def one(expr: str) -> Any:
        try:
            return _eval(ast.parse(expr.strip(), mode="eval"))
        except (SyntaxError, ValueError, TypeError, ZeroDivisionError, OverflowError) as exc:
            raise ConfigError(f"expression $({expr})$ in {where!r} is not plain arithmetic "
                              f"({exc or 'error'}); use numbers, + - * / // % **, min, max, int, round") \
                from None

    m = _EXPR.fullmatch(text.strip())
    if m is not None:
        return one(m.group(1))
    return _EXPR.sub(lambda mm: _text(one(mm.group(1))), text)


def resolve(values: Mapping[str, Any], env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every value with its references replaced (see the module docstring)."""
    r = _Resolver(values, os.environ if env is None else env)
    return {name: r.get(name, []) for name in values}


def flag_args(params: Mapping[str, Any]) -> list[str]:
    """The command-line flags of resolved parameters (dotted names are not flags)."""
    out: list[str] = []
    for name, value in params.items():
        if "." in name:
            continue
        if name.startswith("-"):
            flag = name
        else:
            flag = f"-{name}" if len(name) == 1 else "--" + name.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            out.append(flag)
        elif isinstance(value, list):
            for item in value:
                out += [flag, _text(item)]
        else:
            out += [flag, _text(value)]
    return out


def output_args(command: str, out_dir: Path) -> list[str]:
    """Where each command writes its results inside the experiment's directory."""
    if command == "load":
        return ["--json", str(out_dir / "load.json"), "-f", str(out_dir / "load.csv")]
    return ["--out", str(out_dir)]


def experiment_key(command: str, combination: Mapping[str, Any]) -> str:
    """A stable id from the command and the unresolved parameters (resume matches on it)."""
    blob = json.dumps({"command": command, "params": combination}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def expand(spec: Spec, sweep_dir: Path, env: Mapping[str, str] | None = None) -> list[Experiment]:
    """The plan: one Experiment per combination of variable values, in product order."""
    names = list(spec.variables)
    combos = list(itertools.product(*(spec.variables[n] for n in names))) if names else [()]
    plan: list[Experiment] = []
    for index, combo in enumerate(combos):
        combination = dict(spec.parameters) | dict(zip(names, combo, strict=True))
        exp_id = experiment_key(spec.command, combination)
        out_dir = sweep_dir / "runs" / exp_id
        builtins = {"exp.index": index, "exp.id": exp_id, "exp.dir": str(out_dir),
                    "sweep.dir": str(sweep_dir)}
        params = resolve(builtins | combination, env)
        argv = (*COMMANDS[spec.command], *flag_args(params), *output_args(spec.command, out_dir))
        shown = {k: v for k, v in params.items() if k not in builtins}
        plan.append(Experiment(index, exp_id, shown, tuple(argv), out_dir, combination))
    return plan
