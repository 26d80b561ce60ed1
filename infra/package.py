"""Build the deployable bundle: Lambda zip with templates/ inside + merged SAM template.

Chalice ships only app.py, chalicelib/ and vendor/, so templates/ is copied
into chalicelib/templates in a scratch copy of the project, never in the
source tree. Usage: python -m infra.package OUT_DIR [--stage dev|prod] [--template-only]

``--template-only`` writes the same merged SAM template without building the
Lambda zip (no pip download): what the configuration tests read.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("app.py", "chalicelib", "requirements.txt", ".chalice")
# Babel carries CLDR data for ~1,100 locales (~35 MB unpacked); the app speaks en, es
# and pt-BR, whose data is these files (each locale merges its parents up to root).
BABEL_DATA = "babel/locale-data/"
BABEL_KEPT = frozenset({"root.dat", "en.dat", "es.dat", "pt.dat", "pt_BR.dat"})


# Chalice's integrations call the web function itself ($LATEST); through the `live`
# alias (AutoPublishAlias in infra/resources.yaml), a deploy shifts the API's traffic
# gradually and CodeDeploy rolls it back on the alarms.
UNQUALIFIED_HANDLER = "${APIHandler.Arn}/invocations"
ALIASED_HANDLER = "${APIHandlerAliaslive}/invocations"


def route_api_through_alias(template: Path) -> int:
    """Point every API integration of ``template`` at the web function's alias; how many."""
    text = template.read_text(encoding="utf-8")
    count = text.count(UNQUALIFIED_HANDLER)
    template.write_text(text.replace(UNQUALIFIED_HANDLER, ALIASED_HANDLER), encoding="utf-8")
    return count


def build(
    out_dir: Path,
    stage: str = "dev",
    *,
    wheelhouse: Path | None = None,
    offline_python_path: Path | None = None,
) -> Path:
    """Package the app into ``out_dir``.

    ``wheelhouse``: take every dependency from this folder (infra/wheelhouse.py fills
    it) and never ask an index (PIP_NO_INDEX), so packaging needs no network.
    ``offline_python_path``: a folder put first on the PYTHONPATH of chalice and of
    the pip runs it starts (the tests' loopback-only ``sitecustomize``).
    """
    out_dir = out_dir.resolve()
    with tempfile.TemporaryDirectory(prefix="checkos-build-") as scratch:
        project = Path(scratch) / "checkos"
        project.mkdir()
        for name in SHIPPED:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(
                    source,
                    project / name,
                    ignore=shutil.ignore_patterns("__pycache__", "deployments", "deployed"),
                )
            else:
                shutil.copy2(source, project / name)
        shutil.copytree(ROOT / "templates", project / "chalicelib" / "templates")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        env = {
            **os.environ,
            "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        }
        if wheelhouse is not None:
            env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheelhouse.resolve()))
            env.pop("PIP_EXTRA_INDEX_URL", None)
            env.pop("PIP_INDEX_URL", None)
        if offline_python_path is not None:
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(offline_python_path), env.get("PYTHONPATH", "")) if p
            )
        chalice = Path(sys.executable).with_name("chalice")
        subprocess.run(
            [
                str(chalice),
                "package",
                "--stage",
                stage,
                "--merge-template",
                str(ROOT / "infra" / "resources.yaml"),
                "--template-format",
                "yaml",
                str(out_dir),
            ],
            cwd=project,
            env=env,
            check=True,
        )
    route_api_through_alias(out_dir / "sam.yaml")
    trim_locale_data(out_dir / "deployment.zip")
    return out_dir


def trim_locale_data(bundle: Path) -> None:
    """Rewrite the Lambda zip without the CLDR data of locales the app never shows."""
    if not bundle.exists():
        return
    trimmed = bundle.with_suffix(".trimmed.zip")
    with zipfile.ZipFile(bundle) as source, zipfile.ZipFile(trimmed, "w") as target:
        for info in source.infolist():
            name = info.filename
            if name.startswith(BABEL_DATA) and name[len(BABEL_DATA) :] not in BABEL_KEPT:
                continue
            target.writestr(info, source.read(info), compress_type=zipfile.ZIP_DEFLATED)
    trimmed.replace(bundle)


def build_template(out_dir: Path, stage: str = "dev") -> Path:
    """Chalice's own packager on the project (``--merge-template`` as in ``build``),
    its code packaging step replaced by an empty archive: ``OUT_DIR/sam.yaml`` only.

    Chalice imports app.py with the stage's variables to list the functions,
    so run it in a process of its own (``python -m infra.package ... --template-only``).
    """
    from chalice.cli.factory import CLIFactory
    from chalice.deploy.packager import LambdaDeploymentPackager

    out_dir = out_dir.resolve()
    with tempfile.TemporaryDirectory(prefix="checkos-template-") as scratch:
        placeholder = Path(scratch) / "code.zip"
        zipfile.ZipFile(placeholder, "w").close()
        factory = CLIFactory(project_dir=str(ROOT))
        config = factory.create_config_obj(stage)
        packager = factory.create_app_packager(
            config,
            factory.create_package_options(),
            "cloudformation",
            "yaml",
            str(ROOT / "infra" / "resources.yaml"),
        )
        with mock.patch.object(
            LambdaDeploymentPackager,
            "create_deployment_package",
            lambda *_args, **_kwargs: str(placeholder),
        ):
            packager.package_app(config, str(out_dir), stage)
    (out_dir / "deployment.zip").unlink(missing_ok=True)
    route_api_through_alias(out_dir / "sam.yaml")
    return out_dir / "sam.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--template-only", action="store_true")
    args = parser.parse_args()
    if args.template_only:
        print(build_template(args.out_dir, args.stage))
    else:
        print(build(args.out_dir, args.stage))


if __name__ == "__main__":
    main()
