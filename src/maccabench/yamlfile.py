"""Reading YAML config files strictly (torch-free: the Snakefile and `check-config` import it).

`yaml.safe_load` accepts a mapping that gives the same key twice and keeps the last value, so a
second `cn:` entry silently replaces the first; here that is an error naming the key's dotted path
and both lines. A syntax error becomes one or two lines with file, line, column and what the
parser expected, instead of PyYAML's traceback.

Scalars are read exactly as `yaml.safe_load` (and Snakemake's loader) read them, YAML 1.1 rules
included: `1e-7` without a decimal point stays the text "1e-7", and the hyper-parameter checks
(`algos.common.check_value`) say how to write it. Reading it differently here would make the CLI
and Snakemake see different configs.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from .errors import ConfigError, MaccabenchError


class DuplicateKeyError(ConfigError):
    """A mapping gives the same key twice; `field` is the key's dotted path."""

    def __init__(self, path, field: str, first: yaml.Mark, second: yaml.Mark):
        self.path, self.lines = str(path), (first.line + 1, second.line + 1)
        at = (f"line {first.line + 1} and line {second.line + 1}" if first.line != second.line else
              f"line {first.line + 1}, columns {first.column + 1} and {second.column + 1}")
        super().__init__(field, f"is given twice in {path} ({at}); YAML would silently keep only the second",
                         "remove one of the two entries, or rename one if both are meant")


class YamlSyntaxError(MaccabenchError):
    """The file is not valid YAML; line and column are 1-based."""

    def __init__(self, path, line: int | None, column: int | None, problem: str, fix: str):
        self.path, self.line, self.column, self.problem, self.fix = str(path), line, column, problem, fix
        where = f"{path}:{line}:{column}" if line is not None else str(path)
        super().__init__(f"{where}: invalid YAML: {problem}. Fix: {fix}")


def _syntax_error(path, err: yaml.YAMLError) -> YamlSyntaxError:
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err)
    context, cmark = getattr(err, "context", None), getattr(err, "context_mark", None)
    if context:
        # e.g. "while parsing a block mapping" + where that mapping began
        problem += f" ({context}" + (f" that starts at line {cmark.line + 1}" if cmark is not None else "") + ")"
    if "'\\t'" in problem:
        fix = "indent with spaces; YAML does not allow tabs there"
    elif "end of stream" in problem or "flow" in (context or ""):
        fix = "close the bracket or quote opened before this point (or quote a value containing , [ ] { } :)"
    elif "expected <block end>" in problem:
        fix = "indent this line like the other keys of its section"
    elif "mapping values are not allowed" in problem:
        fix = "check the line's indentation, or quote a value that contains ': '"
    elif "constructor for the tag" in problem:
        fix = "quote the value: a leading `!` starts a YAML tag"
    elif "expected a single document" in (context or ""):
        fix = "remove the `---` line: a config file holds one document"
    else:
        fix = "correct the YAML at that line (indentation, brackets, quotes)"
    return YamlSyntaxError(path, mark.line + 1 if mark else None, mark.column + 1 if mark else None, problem, fix)


def _key_text(key) -> str:
    return key if isinstance(key, str) else repr(key)


def _check_duplicates(loader: yaml.SafeLoader, node: yaml.Node, where: str, path, seen: set) -> None:
    """Walk the composed document; a mapping key given twice raises DuplicateKeyError."""
    if id(node) in seen:   # an alias: its anchor was checked where it was defined
        return
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicates(loader, item, f"{where}[{i}]", path, seen)
    elif isinstance(node, yaml.MappingNode):
        first_mark = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":   # `<<: *base`; explicit keys may override it
                _check_duplicates(loader, value_node, where, path, seen)
                continue
            key = loader.construct_object(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            field = f"{where}.{_key_text(key)}" if where else _key_text(key)
            if key is not None:
                if key in first_mark:
                    raise DuplicateKeyError(path, field, first_mark[key], key_node.start_mark)
                first_mark[key] = key_node.start_mark
            _check_duplicates(loader, value_node, field, path, seen)


def read_strict(path: str | Path):
    """The YAML file's content, as `yaml.safe_load` reads it, or an error a user can act on:
    DuplicateKeyError (a ConfigError naming the key's dotted path and both lines) or
    YamlSyntaxError (file:line:column and what the parser expected)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise YamlSyntaxError(path, None, None, f"is not UTF-8 text ({e.reason} at byte {e.start})",
                              "save the file as UTF-8") from None
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:   # an empty file, as yaml.safe_load reads it
            return None
        _check_duplicates(loader, root, "", path, set())
        return loader.construct_document(root)
    except yaml.YAMLError as e:
        raise _syntax_error(path, e) from None
    finally:
        loader.dispose()


def check_files(paths) -> None:
    """Read each config file strictly (for the Snakefile: Snakemake has parsed `workflow.configfiles`
    itself, without rejecting duplicate keys). Raises as read_strict does."""
    for p in paths:
        read_strict(p)
