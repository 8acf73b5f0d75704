"""`faasbox layer build`: a Python layer zip from a requirements file, without Docker.

pip installs the requirements with `--target` into `python/` of a scratch folder, for the
Python faasbox runs functions on (this interpreter) and this machine's platform; the folder is
then zipped as faasbox zips any package (faasbox.registry.packaging: canonical, no
`__pycache__`), so the zip is what Lambda's `python/` layer layout expects: unzipped at /opt,
its packages import from /opt/python.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from faasbox.errors import DeployError
from faasbox.registry.code_store import package_files, write_files_zip
from faasbox.registry.packaging import LAYER_EXCLUDED


def build_python_layer(
    requirements: Path, output: Path, progress: Callable[[str], None] = lambda line: None
) -> int:
    """Install `requirements` into a layer zip at `output`; the number of files in it.
    DeployError with pip's own message when the install fails; `progress` gets pip's output
    a line at a time as it runs."""
    if not requirements.is_file():
        raise DeployError(f"No requirements file at {requirements}")
    with tempfile.TemporaryDirectory(prefix="faasbox-layer-") as scratch:
        target = Path(scratch) / "python"
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--no-compile",  # no .pyc: the layer stays the same bytes for the same packages
            "--target",
            str(target),
            "-r",
            str(requirements),
        ]
        lines: list[str] = []
        with subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as pip:
            assert pip.stdout is not None
            for line in pip.stdout:
                lines.append(line.rstrip())
                progress(line.rstrip())
        if pip.returncode != 0:
            errors = [line for line in lines if "ERROR" in line] or lines[-5:]
            raise DeployError(f"pip could not install {requirements}:\n" + "\n".join(errors))
        files = sorted(package_files(Path(scratch), (), LAYER_EXCLUDED))
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(f".{output.name}.tmp")
        with tmp.open("wb") as out:
            write_files_zip(files, out)
        tmp.replace(output)
        return len(files)
