"""What every command shares: absl parsing with one-line errors and exit status 2.

A user mistake (a bad flag value, a missing file) is not a crash: it ends with one line
on stderr naming the problem and exit status 2, never a traceback.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import tempfile
import typing
from collections.abc import Callable, Sequence
from typing import TypeVar

from absl import app, flags

from tfambient.configs import renamed_fields

USAGE_ERROR = 2
T = TypeVar("T")


class UserError(Exception):
    """A mistake in what the user asked for; its message is shown as is."""


def _program() -> str:
    return os.path.basename(sys.argv[0]) or "tfambient"


def fail(message: str) -> None:
    """Print one error line and exit with the usage-error status."""
    print(f"{_program()}: error: {message}", file=sys.stderr)
    sys.exit(USAGE_ERROR)


HELP_FLAGS = ("-h", "-?", "--help", "--helpshort")


def load_tensorflow_for_records() -> None:
    """Import TensorFlow quietly for a command that only reads and writes records, with
    GPUs hidden: record I/O needs none, and TensorFlow would take the whole memory of one
    that a training job beside us is using."""
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    load_tensorflow()


def load_tensorflow() -> None:
    """Import TensorFlow and let it pick its devices without its start-up noise."""
    _quietly(_list_devices)


def _list_devices() -> None:
    import tensorflow as tf

    tf.config.list_logical_devices()


def _import_tensorflow() -> None:
    import tensorflow  # noqa: F401  (importing it starts no context)


def _quietly(start: Callable[[], T]) -> T:
    """``start()``, with TensorFlow's start-up noise captured.

    TensorFlow 2.21 writes start-up lines (oneDNN, CPU features, CUDA probing, its gRPC
    server) to file descriptor 2 before its logging is configured, whatever
    TF_CPP_MIN_LOG_LEVEL says, and they would bury the command's own output. They are
    captured while it imports and picks its devices, and replayed if that fails; commands
    that train say which devices they use.
    """
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            return start()
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def worker_processes(requested: int) -> int:
    """--num_workers as a count: -1 is one per CPU core this process may use."""
    if requested >= 0:
        return requested
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def define_cluster_timeout_flag(module: str) -> None:
    """--cluster_timeout, listed by --help as ``module``'s."""
    flags.DEFINE_float(
        "cluster_timeout",
        300.0,
        "With several workers in TF_CONFIG: seconds to wait for the others to answer before "
        "giving up, naming those that did not.",
    )
    flags.FLAGS.register_flag_by_module(module, flags.FLAGS["cluster_timeout"])


def start_strategy(name: str, cluster_timeout_s: float):
    """The tf.distribute strategy --strategy=``name`` picks (train.make_strategy), created
    quietly before anything else starts TensorFlow's context: a multi-worker strategy
    configures collective ops, which only a fresh context allows.

    With a cluster to join, TF_CONFIG is checked first, this worker's port held, and the
    others met (hosts.Meeting) within ``cluster_timeout_s``; a mistake is a UserError.
    """
    from tfambient import hosts

    try:
        cluster = hosts.cluster_to_join(name, os.environ.get("TF_CONFIG"))
        with hosts.Meeting(cluster) as meeting:
            _quietly(_import_tensorflow)
            meeting.wait(cluster_timeout_s)
    except (ValueError, TimeoutError) as error:
        raise UserError(str(error)) from None
    return _quietly(lambda: _make_strategy(name))


def _make_strategy(name: str):
    from tfambient import trainer  # Keras and the rest of TensorFlow, quietly too

    return trainer.make_strategy(name)


def start_from_flags(cls, check: Callable[[T], None] | None = None):
    """The command's settings, the dataclass ``cls`` built from its flags (a bad value, or a
    ValueError of ``check(config)``, is a UserError), with INFO logs, and the strategy it runs
    under (:func:`start_strategy`, from the field ``strategy`` and --cluster_timeout)."""
    try:
        config = dataclass_from_flags(cls)
        if check is not None:
            check(config)
    except ValueError as error:
        raise UserError(str(error)) from None
    logging.getLogger().setLevel(logging.INFO)
    return config, start_strategy(config.strategy, flags.FLAGS.cluster_timeout)


def _print_help(module_names: Sequence[str]) -> None:
    """The command's docstring and its own flags (absl's --help shows every library's)."""
    print((sys.modules[module_names[0]].__doc__ or "").strip())
    print("\nflags:")
    for name in module_names:
        print(flags.FLAGS.module_help(name))
    print("\n  --flagfile: read flags from a file, one per line.")
    print("  --helpfull: every flag, including logging's.")


def _flags_parser(module_names: Sequence[str]) -> Callable[[Sequence[str]], list[str]]:
    def parse(argv: Sequence[str]) -> list[str]:
        if any(arg in HELP_FLAGS for arg in argv[1:]):
            _print_help(module_names)
            sys.exit(0)
        try:
            return flags.FLAGS(argv)
        except flags.UnrecognizedFlagError as error:
            if error.flagname in _RENAMED_FLAGS:
                fail(f"--{error.flagname} is now --{_RENAMED_FLAGS[error.flagname]} (see --help)")
            fail(f"{error} (see --help)")
            raise  # unreachable: fail exits
        except flags.Error as error:
            fail(f"{error} (see --help)")
            raise  # unreachable: fail exits

    return parse


def define_dataclass_flags(cls, module: str, flag_values=flags.FLAGS) -> None:
    """One flag per described field of the dataclass ``cls``, so a config and its command
    cannot drift: the field's name (or its ``flag`` metadata), default and type (a tuple is
    a comma-separated list, or a repeatable flag with ``multi``; a field with ``choices`` an
    enum), and the help, bounds and
    choices its metadata gives (see :func:`tfambient.configs.option`). Fields without help
    are derived, not flags. The flags are listed by --help as ``module``'s."""
    if module == "__main__":  # run with python -m: absl files its flags under the script
        module = sys.argv[0]
    for field, kind in _flag_fields(cls):
        _define_field_flag(field, kind, flag_values)
        flag_values.register_flag_by_module(module, flag_values[flag_name(field)])
    _RENAMED_FLAGS.update(renamed_fields(cls))


# Flags renamed since a release: old name -> new (from the fields' ``formerly``).
_RENAMED_FLAGS: dict[str, str] = {}


def flag_name(field: dataclasses.Field) -> str:
    return field.metadata.get("flag", field.name)


def _flag_fields(cls) -> list[tuple[dataclasses.Field, type]]:
    """The fields that are flags, each with its value's type (``X | None`` read as X, any
    tuple as tuple)."""
    hints = typing.get_type_hints(cls)
    return [
        (field, _value_type(hints[field.name]))
        for field in dataclasses.fields(cls)
        if "help" in field.metadata
    ]


def _value_type(hint) -> type:
    args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    origin = typing.get_origin(hint)
    if origin is tuple:
        return tuple
    if origin is not None and len(args) == 1:  # X | None
        return _value_type(args[0])
    return hint


def _element_type(cls, field: dataclasses.Field) -> type:
    hint = typing.get_type_hints(cls)[field.name]
    tuple_hint = next(h for h in (hint, *typing.get_args(hint)) if typing.get_origin(h) is tuple)
    return typing.get_args(tuple_hint)[0]


def _define_field_flag(field: dataclasses.Field, kind: type, flag_values) -> None:
    meta = field.metadata
    default = None if field.default is dataclasses.MISSING else field.default
    name, help_text = flag_name(field), meta["help"]
    if "choices" in meta:
        flags.DEFINE_enum(name, default, list(meta["choices"]), help_text, flag_values=flag_values)
    elif kind is tuple:
        listed = None if default is None else [str(v) for v in default]
        define = flags.DEFINE_multi_string if meta.get("multi") else flags.DEFINE_list
        define(name, listed, help_text, flag_values=flag_values)
    elif kind is bool:
        flags.DEFINE_bool(name, default, help_text, flag_values=flag_values)
    elif kind in (int, float):
        define = flags.DEFINE_integer if kind is int else flags.DEFINE_float
        bounds = {"lower_bound": meta.get("lower"), "upper_bound": meta.get("upper")}
        define(name, default, help_text, flag_values=flag_values, **bounds)
    else:
        flags.DEFINE_string(name, default, help_text, flag_values=flag_values)


def dataclass_from_flags(cls, flag_values=flags.FLAGS, **derived):
    """The dataclass ``cls`` built from the flags of :func:`define_dataclass_flags` (a list
    flag becomes a tuple of its elements' type) and the ``derived`` fields; a bad value, or
    no value for a field without a default (``configs.required``), is a ValueError."""
    values = dict(derived)
    for field, kind in _flag_fields(cls):
        value = flag_values[flag_name(field)].value
        if field.default is dataclasses.MISSING and value in (None, ""):
            raise ValueError(f"--{flag_name(field)} is required")
        if kind is tuple and value is not None:
            element = _element_type(cls, field)
            try:
                value = tuple(element(v) for v in value)
            except ValueError:
                kinds = {int: "integers", float: "numbers"}.get(element, element.__name__)
                raise ValueError(
                    f"--{flag_name(field)} must be {kinds}: {','.join(value)}"
                ) from None
        values[field.name] = value
    return cls(**values)


def run(main: Callable[[list[str]], int | None], flag_modules: Sequence[str] = ()) -> None:
    """Run `main` as an absl app (so --flagfile works) with --help and friendly errors.

    --help lists the flags defined in main's module and in `flag_modules`.
    """

    def guarded(argv: list[str]) -> int | None:
        try:
            return main(argv)
        except UserError as error:
            fail(str(error))
        except KeyboardInterrupt:
            print(f"{_program()}: interrupted", file=sys.stderr)
            return 130

    app.run(guarded, flags_parser=_flags_parser([main.__module__, *flag_modules]))
