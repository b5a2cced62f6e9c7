#!/usr/bin/env python3
"""Submit one SageMaker training job from the request the launcher wrote beside this file.

The launcher copies this file into the job folder as `launch.py`; `python launch.py` there
submits the job again by hand. It reads `sagemaker_request.json` (estimator arguments, fit
inputs, the files to ship in the source folder), builds the SDK's PyTorch estimator and calls
fit(). The outcome goes to `--result FILE` (default: sagemaker_result.json beside the request)
as JSON: the training job's name, ARN, status and region, or {"error": "..."}.

Needs the SageMaker Python SDK (>=2.236,<3) and AWS credentials. Secrets are never in the
request: the names listed in its `secret_env` are read from this process's environment.
Standard library only at import time, so the launcher can ship it without the SDK installed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

REQUEST = "sagemaker_request.json"
RESULT = "sagemaker_result.json"
SECRETS_WRAPPER = "hpl_secrets.py"
SDK_MISSING = "install it with: pip install 'hyperpod-launcher[sagemaker]'"
NEURON_DIST_REPO = "https://github.com/aws-neuron/neuronx-distributed-training.git"


class Failure(Exception):
    """A problem this runner found itself (its message is the whole story)."""


def ship_sources(request: dict[str, Any], here: Path) -> Path:
    """Fill the source folder the SDK uploads: the request's (source, target) pairs, with
    sources relative to the request's folder or absolute, and the training code package
    (source, target, name) of the pinned checkout, when the request names one."""
    source_dir = here / request["source_dir"]
    source_dir.mkdir(parents=True, exist_ok=True)
    for source, target in request["ship"]:
        path = here / source
        if not path.exists():
            raise Failure(f"{path} does not exist; it is part of the job's source folder")
        if path.is_dir():
            ignore = shutil.ignore_patterns(".git", "__pycache__")
            shutil.copytree(path, source_dir / target, ignore=ignore, dirs_exist_ok=True)
        else:
            shutil.copy2(path, source_dir / target)
    if request.get("code_package"):  # next to the entry script: ahead of the image's copy
        source, target, name = request["code_package"]
        if (here / source).is_dir():
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(here / source, source_dir / target, ignore=ignore, dirs_exist_ok=True)
        else:
            print(
                f"warning: the checkout has no {name}; the image's installed copy runs",
                file=sys.stderr,
                flush=True,
            )
    return source_dir


def job_environment(request: dict[str, Any]) -> dict[str, str]:
    environment = dict(request["environment"])
    for name in request["secret_env"]:
        if not os.environ.get(name):
            raise Failure(f"{name} is not set in this environment; the job expects it")
        environment[name] = os.environ[name]
    return environment


def prepend_git_config(key: str, value: str) -> None:
    """A git setting for the SDK's clone, ahead of this environment's own: of two equally long
    url.<base>.insteadOf matches, git uses the first."""
    count = int(os.environ.get("GIT_CONFIG_COUNT", "0"))
    for index in range(count, 0, -1):
        for part in ("KEY", "VALUE"):
            previous = os.environ.get(f"GIT_CONFIG_{part}_{index - 1}", "")
            os.environ[f"GIT_CONFIG_{part}_{index}"] = previous
    os.environ["GIT_CONFIG_KEY_0"] = key
    os.environ["GIT_CONFIG_VALUE_0"] = value
    os.environ["GIT_CONFIG_COUNT"] = str(count + 1)


def route_code_clone(checkout: Path, trainium: bool, launch_id: str) -> None:
    """The SDK git-clones the recipe's training code: make it clone the launcher's pinned
    checkout instead (through git's `insteadOf`, seen by the SDK's child git process)."""
    if not (checkout / ".git").exists():
        return  # no launcher checkout (e.g. rerun by hand after a dry run): the SDK's default
    if trainium:  # the SDK clones NxD Training from the URL in its config; no setting moves it
        import sagemaker.pytorch

        config = Path(sagemaker.pytorch.__file__).parent / "training_recipes.json"
        url = json.loads(config.read_text()).get("neuron_dist_repo", NEURON_DIST_REPO)
    else:
        url = f"https://hyperpod-launcher.invalid/{launch_id}/adapter.git"
        os.environ["TRAINING_ADAPTER_GIT"] = url
    prepend_git_config(f"url.{checkout}.insteadOf", url)


def estimator_for(request: dict[str, Any], here: Path, session: Any, kwargs: dict[str, Any]):
    import sagemaker
    from sagemaker.pytorch import PyTorch

    source_dir = str(ship_sources(request, here))
    recipe = request.get("recipe")
    if recipe:
        route_code_clone(here / recipe["code_checkout"], recipe["trainium"], request["launch_id"])
        estimator = PyTorch(
            training_recipe=str(here / recipe["training_recipe"]),
            recipe_overrides=recipe["recipe_overrides"],
            source_dir=source_dir,
            sagemaker_session=session,
            **kwargs,
        )
        if request["secrets_wrapper"]:  # start the script the SDK chose through the wrapper
            estimator.environment["HPL_ENTRY_POINT"] = estimator.entry_point
            estimator.entry_point = SECRETS_WRAPPER
        return estimator
    script = request["script"]
    if script["image_from"]:
        image = dict(script["image_from"])
        kwargs["image_uri"] = sagemaker.image_uris.retrieve(
            image.pop("framework"),
            region=session.boto_region_name,
            version=image.pop("version"),
            image_scope="training",
            **image,
        )
    return PyTorch(
        entry_point=script["entry_point"],
        source_dir=source_dir,
        hyperparameters=script["hyperparameters"],
        distribution=script["distribution"],
        sagemaker_session=session,
        **kwargs,
    )


def submit(request: dict[str, Any], here: Path) -> dict[str, Any]:
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    try:
        import boto3
        import sagemaker
        from sagemaker.debugger import TensorBoardOutputConfig
        from sagemaker.inputs import FileSystemInput
    except ImportError as err:
        raise Failure(f"the SageMaker Python SDK is not importable ({err}); {SDK_MISSING}") from err
    boto_session = boto3.Session(region_name=request["region"])
    if not boto_session.region_name:
        raise Failure(
            "no AWS region: set cluster.sm_jobs_config.region (or AWS_REGION in this environment)"
        )
    session = sagemaker.Session(boto_session=boto_session)
    kwargs = dict(request["estimator"])
    kwargs["role"] = request["role"] or sagemaker.get_execution_role(session)
    kwargs["environment"] = job_environment(request)
    if request["secrets_wrapper"]:
        kwargs["environment"]["HPL_SECRETS_REGION"] = session.boto_region_name
    if request["tensorboard"]:
        kwargs["tensorboard_output_config"] = TensorBoardOutputConfig(**request["tensorboard"])
    estimator = estimator_for(request, here, session, kwargs)
    inputs = request["inputs"]
    fit_inputs = FileSystemInput(**inputs["file_system"]) if inputs["file_system"] else inputs["s3"]
    estimator.fit(inputs=fit_inputs, wait=request["wait"], job_name=request["job_name"])
    job = estimator.latest_training_job.describe()
    keys = ("TrainingJobName", "TrainingJobArn", "TrainingJobStatus")
    result = {key: job.get(key) for key in keys}
    result["Region"] = session.boto_region_name
    return result


def masked(text: str, request: dict[str, Any] | None) -> str:
    """`text` with the values of the request's secrets (read from this environment) replaced:
    an AWS error may quote the job's environment."""
    names = (request or {}).get("secret_env") or []
    values = sorted((os.environ.get(n) or "" for n in names), key=len, reverse=True)
    for value in values:
        if len(value) >= 4:
            text = text.replace(value, "****")
    return text


def write_result(path: Path, result: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    here = Path(__file__).resolve().parent
    parser.add_argument("--request", type=Path, default=here / REQUEST, help="the request JSON")
    parser.add_argument("--result", type=Path, help=f"where the outcome goes (default: {RESULT})")
    args = parser.parse_args(argv)
    request_path = args.request.resolve()
    result_path = args.result or request_path.with_name(RESULT)
    request = None
    try:
        request = json.loads(request_path.read_text(encoding="utf-8"))
        result = submit(request, request_path.parent)
    except Exception as err:  # the SDK's or AWS's own message, on one line
        text = masked(" ".join(str(err).split()) or repr(err), request)
        message = text if isinstance(err, Failure) else f"{type(err).__name__}: {text}"
        write_result(result_path, {"error": message})
        print(f"error: {message}", file=sys.stderr, flush=True)
        return 1
    write_result(result_path, result)
    print(
        f"submitted training job {result['TrainingJobName']} ({result['TrainingJobStatus']})",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
