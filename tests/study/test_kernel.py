"""The project's Jupyter kernel: registered in this environment and running this interpreter."""
import re
import sys
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

from multitune_lib import paths
from multitune_lib.errors import ConfigError
from multitune_lib.study import kernel


def test_the_kernel_runs_this_interpreter_from_this_environment():
    assert kernel.kernel_name() == kernel.NAME
    spec = KernelSpecManager().get_kernel_spec(kernel.NAME)
    assert Path(spec.argv[0]).parent == Path(sys.executable).parent  # this environment's bin/python
    assert Path(spec.resource_dir).is_relative_to(sys.prefix) and spec.display_name == kernel.DISPLAY_NAME


def test_the_makefile_registers_and_tests_with_the_same_kernel():
    makefile = (paths.project_root() / "Makefile").read_text()
    assert re.search(rf"^KERNEL := {kernel.NAME}$", makefile, re.MULTILINE)
    assert "--nbval-kernel-name $(KERNEL)" in makefile and "ipykernel install --sys-prefix --name $(KERNEL)" in makefile


def missing(self, name):
    raise NoSuchKernel(name)


def test_a_missing_kernel_is_registered_in_this_environment(monkeypatch):
    installed = []
    monkeypatch.setattr(KernelSpecManager, "get_kernel_spec", missing)
    monkeypatch.setattr(kernel, "install", lambda **kw: installed.append(kw))
    assert kernel.kernel_name() == kernel.NAME
    assert installed == [{"kernel_name": kernel.NAME, "display_name": kernel.DISPLAY_NAME, "prefix": sys.prefix}]


def test_an_environment_that_cannot_take_it_is_one_line_with_the_command(monkeypatch):
    def refuse(**kw):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(KernelSpecManager, "get_kernel_spec", missing)
    monkeypatch.setattr(kernel, "install", refuse)
    with pytest.raises(ConfigError) as err:
        kernel.kernel_name()
    assert len(str(err.value).splitlines()) == 1
    assert f"python -m ipykernel install --user --name {kernel.NAME}" in str(err.value)
