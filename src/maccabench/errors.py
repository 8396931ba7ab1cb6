"""Errors a user can act on: each names the thing that is wrong and how to fix it."""


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


def run_command(fn, args) -> None:
    """Run a CLI command; errors a user can act on are printed without a traceback (exit code 2)."""
    import sys
    try:
        fn(args)
    except MaccabenchError as e:
        print(f"maccabench: error: {e}", file=sys.stderr)
        sys.exit(2)
