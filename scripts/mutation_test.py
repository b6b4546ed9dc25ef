"""Mutation testing of the optimizers and the NumPy reference kernels with mutmut.

Not part of CI. mutmut changes one small thing at a time in the code (``+`` to ``-``, ``<``
to ``<=``, a constant to another...) and runs the tests that reach it; a mutant the tests do
not notice ("survived") is a change of behaviour no test pins down. Run it in a venv of its
own that also sees the project's dependencies, e.g.::

    python -m venv ../mutenv && ../mutenv/bin/pip install mutmut==3.8.1 -e .[test]
    ../mutenv/bin/python scripts/mutation_test.py
    ../mutenv/bin/python scripts/mutation_test.py --show     # the diff of every survivor

It works in a scratch copy of the committed tree (``git archive HEAD``), writes mutmut's
configuration there (mutmut reads it from ``setup.cfg``), and prints the score: killed /
(killed + survived), timeouts counted as killed.

Mutated: ``nprnn/optimizers.py`` and every module of the reference kernels
(``nprnn/kernels/reference/``). Not mutated: ``nprnn/kernels/compiled/``: mutmut swaps each
function for a Python trampoline that chooses the mutant at run time, which Numba cannot
compile; the compiled kernels are tested
equal to the reference (``tests/test_compiled_kernels.py``), so a maths mutant of the
reference that those tests notice stands for the same mutant of its twin.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTATED = ["nprnn/optimizers.py", *sorted(
    str(p.relative_to(ROOT)) for p in (ROOT / "nprnn" / "kernels" / "reference").glob("*.py"))]
TESTS = ["tests/test_optimizers.py", "tests/test_reference_kernels.py",
         "tests/test_layers.py", "tests/test_gradcheck.py", "tests/test_keras_parity.py",
         "tests/test_recurrent_layers.py", "tests/test_mutants.py"]


def configuration() -> str:
    others = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "nprnn").rglob("*.py")
                    if str(p.relative_to(ROOT)) not in MUTATED)
    return "\n".join([
        "[mutmut]",
        "paths_to_mutate = nprnn/",
        "do_not_mutate =",
        *[f"    {path}" for path in others],
        "tests_dir = tests/",
        "pytest_add_cli_args_test_selection =",
        *[f"    {path}" for path in TESTS],
        "pytest_add_cli_args = -p no:cacheprovider -q -x",
        "",
    ])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", action="store_true", help="print every survivor's diff")
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a temporary one)")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="nprnn-mutmut-"))
    workdir.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(workdir)], input=archive, check=True)
    (workdir / "setup.cfg").write_text(configuration())
    for path in (workdir / "tests").glob("test_*.py"):  # mutmut's first run takes them all
        if f"tests/{path.name}" not in TESTS:
            path.unlink()
    env = dict(os.environ, NPRNN_BACKEND="numpy", PYTHONPATH="")
    mutmut = [sys.executable, "-m", "mutmut"]
    subprocess.run([*mutmut, "run"], cwd=workdir, env=env, check=False)
    results = subprocess.run([*mutmut, "results", "--all", "true"], cwd=workdir, env=env,
                             capture_output=True, text=True).stdout
    counts: dict[str, int] = {}
    survivors = []
    for line in results.splitlines():
        match = re.match(r"\s*(\S+): (\w[\w ]*)$", line)
        if match:
            counts[match.group(2)] = counts.get(match.group(2), 0) + 1
            if match.group(2) == "survived":
                survivors.append(match.group(1))
    killed = counts.get("killed", 0) + counts.get("timeout", 0)
    total = killed + counts.get("survived", 0)
    print(f"mutants: {counts}")
    if total:
        print(f"mutation score: {killed}/{total} = {killed / total:.1%}")
    for name in survivors:
        print(f"survived: {name}")
        if args.show:
            subprocess.run([*mutmut, "show", name], cwd=workdir, env=env, check=False)
    print(f"work folder: {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
