"""Every error class the pack defines is titled `ID-EA.<Name>` by the host's own title function
(execution.full_type_name), never with the install path; the server-side titles are checked in
tests/test_input_matrix_server.py and tests/test_learn_id_token_server.py."""
from __future__ import annotations

import inspect
import pkgutil

from support import paths


def module_names(folder, dotted: str, into_subpackages: bool) -> list[str]:
    """The modules of a package folder by dotted name, with its subpackages' where asked (nodes/:
    nodes/training/ holds training's errors)."""
    names = []
    for info in pkgutil.iter_modules([str(folder)]):
        names.append(f"{dotted}.{info.name}")
        if info.ispkg and into_subpackages:
            names += module_names(folder / info.name, f"{dotted}.{info.name}", into_subpackages)
    return names


def pack_error_classes(host) -> dict[str, type]:
    """Exception classes defined in any module of the pack, as the host imported it."""
    found = {}
    for package in ("idea", "nodes"):
        for dotted in module_names(paths.REPO / package, package, into_subpackages=package == "nodes"):
            module = host.pack_module(dotted)
            for name, value in vars(module).items():
                if (inspect.isclass(value) and issubclass(value, BaseException)
                        and value.__module__ in (module.__name__, "ID-EA")):
                    found[f"{dotted}.{name}"] = value
    return found


def test_every_pack_error_is_titled_id_ea_and_keeps_its_builtin_base(host):
    from execution import full_type_name
    classes = pack_error_classes(host)
    assert len(classes) >= 10, sorted(classes)  # the scan found them (FaceNotFoundError, NameTakenError...)
    for where, cls in classes.items():
        title = full_type_name(cls)
        assert title == f"ID-EA.{cls.__qualname__}", (where, title)
        assert issubclass(cls, host.pack_module("idea.errors").IDEAError), where
    builtins = {"IdentityFileError": ValueError, "NameTakenError": FileExistsError,
                "TrainingOutOfMemoryError": RuntimeError,
                "FaceModelError": RuntimeError, "IdentityNotFoundError": FileNotFoundError}
    by_name = {cls.__name__: cls for cls in classes.values()}
    for name, base in builtins.items():
        assert issubclass(by_name[name], base), name
    import torch  # so the host also adds its memory tips and frees its models
    assert issubclass(by_name["TrainingOutOfMemoryError"], torch.OutOfMemoryError)
