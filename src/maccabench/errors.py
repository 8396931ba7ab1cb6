"""Errors a user can act on: each names the thing that is wrong and how to fix it."""
from __future__ import annotations

import re


class MaccabenchError(Exception):
    """Base class; the CLI prints these without a traceback."""


class ConfigError(MaccabenchError):
    def __init__(self, field: str, problem: str, fix: str):
        self.field, self.problem, self.fix = field, problem, fix
        super().__init__(f"config field `{field}`: {problem}. Fix: {fix}")


class DatasetError(MaccabenchError):
    def __init__(self, path, problem: str, fix: str = "delete the file and rerun the pipeline to regenerate it"):
        self.path, self.problem = str(path), problem
        super().__init__(f"dataset {path}: {problem}. Fix: {fix}")


class ArgumentError(MaccabenchError):
    """A command-line argument (`--out`, `--job`, ...) that cannot be used."""

    def __init__(self, argument: str, problem: str, fix: str):
        self.argument, self.problem, self.fix = argument, problem, fix
        super().__init__(f"argument {argument}: {problem}. Fix: {fix}")


# What to write for each kind of value (JSON-schema type names; Python's map onto them)
_KINDS = {"integer": "a whole number (e.g. 64)", "number": "a number (e.g. 0.5 or 1.0e-3)",
          "string": "text", "boolean": "true or false", "object": "a mapping (`key: value` lines)",
          "array": "a list (e.g. [a, b])", "null": "nothing (null)"}
_PYTHON_KINDS = {int: "integer", float: "number", bool: "boolean", str: "string"}


def kind_name(kind) -> str:
    """`integer`, `number`, ... for a JSON-schema type name or a Python type."""
    return _PYTHON_KINDS.get(kind, kind) if isinstance(kind, type) else kind


def _yaml_number(text: str) -> str | None:
    """`1e-3` -> `1.0e-3`: the spelling YAML 1.1 (PyYAML, Snakemake) reads as a number, or None
    if the text is no number. YAML 1.1 needs a decimal point and a signed exponent."""
    m = re.fullmatch(r"\s*([-+]?)(\d*)(?:\.(\d*))?(?:[eE]([-+]?)(\d+))?\s*", text)
    if not m or not (m.group(2) or m.group(3)):
        return None
    sign, whole, frac, esign, exp = m.groups()
    out = f"{sign}{whole or '0'}.{frac or '0'}"
    return out + (f"e{esign or '+'}{exp}" if exp else "")


def type_fix(want, value) -> str:
    """The fix of a value of the wrong type: what to write instead, YAML's pitfalls named.
    `want` is a JSON-schema type name (or a list of them) or a Python type."""
    kinds = [kind_name(k) for k in (want if isinstance(want, (list, tuple)) else [want])]
    if isinstance(value, str) and ("number" in kinds or "integer" in kinds):
        number = _yaml_number(value)
        if number is not None and "e" in value.lower() and "number" in kinds:
            return (f"YAML reads {value} as text (an exponent needs a decimal point and a sign there, "
                    f"e.g. 1.0e-3): write {number}")
        if number is not None and ("number" in kinds or re.fullmatch(r"\s*[-+]?\d+\s*", value)):
            return f"write {value.strip()} without quotes (quoted, YAML reads it as text)"
    if kinds == ["integer"] and isinstance(value, float) and not isinstance(value, bool):
        return f"write a whole number (e.g. {int(value)} or {int(value) + 1}), without a decimal point"
    if kinds == ["boolean"] and isinstance(value, str):
        return "write true or false, without quotes"
    return "write " + " or ".join(_KINDS.get(k, k) for k in kinds)


def range_fix(kind, low=None, high=None, *, low_open=False, high_open=False) -> str:
    """`use a number between 0 and 1`-style fix of a value out of its bounds."""
    what = "a whole number" if kind_name(kind) == "integer" else "a number"
    if low is not None and high is not None:
        if low_open and high_open:
            return f"use {what} strictly between {low} and {high}"
        return f"use {what} between {low}{' (excluded)' if low_open else ''} and {high}{' (excluded)' if high_open else ''}"
    if low is not None:
        return f"use {what} {'>' if low_open else '>='} {low}"
    return f"use {what} {'<' if high_open else '<='} {high}"


def run_command(fn, args) -> None:
    """Run a CLI command; errors a user can act on are printed without a traceback (exit code 2)."""
    import sys
    try:
        fn(args)
    except MaccabenchError as e:
        print(f"maccabench: error: {e}", file=sys.stderr)
        sys.exit(2)
