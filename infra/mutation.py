"""`make mutation`: mutmut over the functions that guard tenants and secrets.

The checkout is copied to a temporary folder (nothing is written into the
source tree); each module of infra/mutation.toml is mutated there on its own,
with one worker (--children N for more), against its few test files. Prints killed / survived /
equivalent per module, every surviving mutant with its diff, and the figure
line; exits 1 while a non-equivalent mutant survives.

    python -m infra.mutation [--only MODULE ...] [--children N] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "infra" / "mutation.toml"
# mutmut's own separator between class and method in a mutant's name.
CLASS_SEP = "\u01c1"
KILLED = {"killed", "timeout", "caught by type check", "segfault"}
# Copied next to chalicelib/ into mutmut's mutants/ folder: what the app and its tests read.
ALSO_COPY = ["app.py", "infra", "templates", ".chalice", "tests", "pyproject.toml"]
PYTEST_ARGS = ["-p", "no:randomly", "-p", "no:cacheprovider"]


@dataclass
class Outcome:
    name: str
    mutants: int = 0
    killed: int = 0
    equivalent: int = 0
    timeouts: int = 0  # counted as killed, shown apart: a hang is a weaker kill than a failure
    survivors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def survived(self) -> int:
        return len(self.survivors)


def tracked_files() -> list[str]:
    """The checkout as git sees it: tracked plus new files, never ignored ones."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    return [name for name in out.split("\0") if name and (ROOT / name).is_file()]


def copy_checkout(into: Path) -> None:
    for name in tracked_files():
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)


def mutant_glob(module_path: str, function: str) -> str:
    dotted = module_path.removesuffix(".py").replace("/", ".")
    if "." in function:
        cls, method = function.split(".", 1)
        return f"{dotted}.x{CLASS_SEP}{cls}{CLASS_SEP}{method}__mutmut_*"
    return f"{dotted}.x_{function}__mutmut_*"


def function_of(mutant: str) -> str:
    local = mutant.rsplit(".", 1)[-1].split("__mutmut_")[0]
    if local.startswith("x" + CLASS_SEP):
        return local[2:].replace(CLASS_SEP, ".")
    return local.removeprefix("x_")


def mutmut_config(module: dict, tests: list[str]) -> str:
    lines = [
        "",
        "[tool.mutmut]",
        'source_paths = ["chalicelib"]',
        f"only_mutate = {json.dumps([module['path']])}",
        f"also_copy = {json.dumps(ALSO_COPY)}",
        f"pytest_add_cli_args = {json.dumps(PYTEST_ARGS)}",
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}",
        "use_git_change_detection = false",
        "",
    ]
    return "\n".join(lines)


def changed_lines(workdir: Path, env: dict[str, str], mutant: str) -> tuple[str, str]:
    shown = subprocess.run(
        [sys.executable, "-m", "mutmut", "show", mutant],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    before = [ln[1:].strip() for ln in shown.splitlines() if ln.startswith("-") and ln[1:2] != "-"]
    after = [ln[1:].strip() for ln in shown.splitlines() if ln.startswith("+") and ln[1:2] != "+"]
    return " / ".join(before), " / ".join(after)


def statuses(workdir: Path, env: dict[str, str]) -> dict[str, str]:
    listed = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        cwd=workdir,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found = {}
    for line in listed.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep:
            found[name] = status
    return found


def run_module(
    name: str, module: dict, equivalents: list[dict], base: Path, children: int = 1
) -> Outcome:
    started = time.monotonic()
    outcome = Outcome(name)
    workdir = base / name
    shutil.copytree(base / "checkout", workdir, symlinks=True)
    tests = [t for t in module["tests"] if (workdir / t).is_file()]
    for missing in sorted(set(module["tests"]) - set(tests)):
        print(f"  {name}: test file {missing} not found, left out")
    with open(workdir / "pyproject.toml", "a", encoding="utf-8") as config:
        config.write(mutmut_config(module, tests))
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("CHECKOS_SUITE", None)
    globs = [mutant_glob(module["path"], f) for f in module["functions"]]
    # A session of its own: an interrupted run takes mutmut's forked workers down with it.
    run = subprocess.Popen(
        [sys.executable, "-m", "mutmut", "run", "--max-children", str(children), *globs],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = run.communicate()
    except BaseException:
        os.killpg(run.pid, signal.SIGKILL)
        raise
    wanted = set(module["functions"])
    found = {
        mutant: status
        for mutant, status in statuses(workdir, env).items()
        if function_of(mutant) in wanted
    }
    if run.returncode != 0 or not found:
        print(output[-4000:])
        raise SystemExit(f"mutation: mutmut failed on {name} (exit {run.returncode})")
    for mutant, status in sorted(found.items()):
        outcome.mutants += 1
        if status in KILLED:
            outcome.killed += 1
            outcome.timeouts += status == "timeout"
            continue
        before, after = changed_lines(workdir, env, mutant)
        function = function_of(mutant)
        if any(
            e["module"] == name
            and e["function"] == function
            and e["before"] == before
            and e["after"] == after
            for e in equivalents
        ):
            outcome.equivalent += 1
            continue
        outcome.survivors.append(f"{function} [{status}] {before!r} -> {after!r}  ({mutant})")
    outcome.seconds = time.monotonic() - started
    return outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="modules of infra/mutation.toml to run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copies")
    parser.add_argument(
        "--children", type=int, default=1, help="mutants tested at once (one per free core)"
    )
    args = parser.parse_args()
    config = tomllib.loads(CONFIG.read_text(encoding="utf-8"))
    modules: dict[str, dict] = config["modules"]
    equivalents: list[dict] = config.get("equivalent", [])
    chosen = args.only or list(modules)
    started = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="checkos-mutation-"))
    outcomes = []
    # `kill` (or Ctrl-C) still prints the figures of the modules that finished.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        # One snapshot of the checkout at the start: edits made meanwhile do not leak in.
        copy_checkout(base / "checkout")
        for name in chosen:
            outcome = run_module(name, modules[name], equivalents, base, args.children)
            outcomes.append(outcome)
            print(
                f"{name}: mutants={outcome.mutants}, killed={outcome.killed}, "
                f"survived={outcome.survived}, equivalent={outcome.equivalent}, "
                f"timeouts={outcome.timeouts} ({outcome.seconds:.0f} s)",
                flush=True,
            )
            for survivor in outcome.survivors:
                print(f"  survived: {survivor}", flush=True)
    except KeyboardInterrupt:
        print(f"mutation: stopped; not run: {', '.join(chosen[len(outcomes) :])}", flush=True)
    finally:
        if args.keep:
            print(f"mutation: copies kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    seconds = round(time.monotonic() - started)
    survived = sum(o.survived for o in outcomes)
    print(
        f"mutation: modules={len(outcomes)}/{len(chosen)}, "
        f"mutants={sum(o.mutants for o in outcomes)}, "
        f"killed={sum(o.killed for o in outcomes)}, survived={survived}, "
        f"equivalent={sum(o.equivalent for o in outcomes)}, "
        f"timeouts={sum(o.timeouts for o in outcomes)}, seconds={seconds}",
        flush=True,
    )
    return 1 if survived or len(outcomes) < len(chosen) else 0


if __name__ == "__main__":
    sys.exit(main())
