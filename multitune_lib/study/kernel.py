"""The Jupyter kernel the notebooks run on: the project's own, registered in this environment (sys.prefix), so
papermill, nbval and JupyterLab all start this interpreter, whatever other Pythons have registered as python3."""
from __future__ import annotations

import sys

from ipykernel.kernelspec import install
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

from ..errors import ConfigError, one_line

NAME = "multitune"  # the Makefile's install and nbval flags name it too
DISPLAY_NAME = "Python (multitune)"


def kernel_name() -> str:
    """NAME, registered first where this environment lacks it (an install without `make install`, e.g. conda's)."""
    try:
        KernelSpecManager().get_kernel_spec(NAME)
    except NoSuchKernel:
        try:
            install(kernel_name=NAME, display_name=DISPLAY_NAME, prefix=sys.prefix)
        except OSError as e:
            raise ConfigError(f"the Jupyter kernel {NAME} is not registered and {sys.prefix} is not writable "
                              f"({one_line(e)}): register it with `python -m ipykernel install --user --name {NAME} "
                              f"--display-name '{DISPLAY_NAME}'`") from None
    return NAME
