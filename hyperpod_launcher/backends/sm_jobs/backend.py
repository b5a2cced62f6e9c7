"""SageMaker training jobs: the SDK's PyTorch estimator, driven by a request file.

Render is pure: plan.py computes the request once, and render writes it as
`sagemaker_request.json` beside `launch.py` (runner.py, copied unchanged), `recipe.yaml` (the
resolved recipe, secrets left out) and `<name>_submission.sh`. The SDK is imported only by
launch.py, in a child process: at submit, and in a dry run (preview.py) to show the exact
CreateTrainingJob request. launch.py reports its outcome in a result file.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hyperpod_launcher import __version__
from hyperpod_launcher.backends.base import (
    Backend,
    RenderedFile,
    Request,
    Submitted,
)
from hyperpod_launcher.backends.sm_jobs import runner
from hyperpod_launcher.backends.sm_jobs.plan import plan
from hyperpod_launcher.backends.sm_jobs.plan import validate as validate_values
from hyperpod_launcher.jobs.records import JobRecord
from hyperpod_launcher.spec.job import JobSpec, LaunchOptions, Secrets
from hyperpod_launcher.util import templating
from hyperpod_launcher.util.errors import BackendError, UserError

if TYPE_CHECKING:
    from hyperpod_launcher.jobs.status import JobStatus

LAUNCH_PY = "launch.py"
REQUEST_JSON = "create_training_job.json"  # a dry run's exact CreateTrainingJob request
SDK_EXTRA = "pip install 'hyperpod-launcher[sagemaker]'"
PREVIEW = Path(__file__).with_name("preview.py")


def sdk_installed() -> bool:
    """Whether `import sagemaker` would find the SDK (looked up, not imported)."""
    try:
        return importlib.util.find_spec("sagemaker") is not None
    except (ImportError, ValueError):
        return False


@cache
def runner_source() -> str:
    return Path(runner.__file__).read_text(encoding="utf-8")


def _read_json(path: str | Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True, kw_only=True)
class SageMakerRequest(Request):
    """The submit command runs launch.py on `payload` (also in the files, as runner.REQUEST),
    which becomes the estimator and its fit() call; the outcome lands in `result`."""

    job_dir: str
    launch_id: str
    job_name: str
    mode: str
    payload: Mapping[str, Any]
    secret_env: tuple[str, ...]
    wait: bool

    @property
    def result(self) -> str:
        return self.submit_argv[-1]

    def estimator_arguments(self) -> dict[str, Any]:
        """The PyTorch estimator's arguments as launch.py passes them (secrets masked)."""
        payload = self.payload
        environment = {**payload["environment"], **dict.fromkeys(self.secret_env, "****")}
        return {
            **payload["estimator"],
            "role": payload["role"] or "<sagemaker.get_execution_role()>",
            "environment": environment,
            **(payload["script"] or {}),
            **(
                {"recipe_overrides": payload["recipe"]["recipe_overrides"]}
                if payload["recipe"]
                else {}
            ),
            "source_dir": os.path.join(self.job_dir, payload["source_dir"]),
        }

    def also_sends(self) -> list[str]:
        lines = [f"{runner.REQUEST} (what launch.py sends): {json.dumps(self.payload, indent=2)}"]
        if self.secret_env:
            lines.append(f"from this environment: {', '.join(self.secret_env)}")
        return lines


class SageMakerBackend(Backend[SageMakerRequest]):
    preflight_checks = "hyperpod_launcher.backends.sm_jobs.preflight"  # what `preflight` asks

    def check_submit_host(self, spec: JobSpec) -> None:
        from hyperpod_launcher.backends.sm_jobs import checks

        if not sdk_installed():
            raise UserError(f"the SageMaker Python SDK is not installed: {SDK_EXTRA}")
        if spec.opts.sm_jobs_config.region is None:
            checks.submit_region()  # the SDK would fail after the job folder is written

    # The job commands need boto3 and none of the rendering code: they live apart.
    def status(self, records: list[JobRecord], detailed: bool = False) -> list[JobStatus]:
        from hyperpod_launcher.backends.sm_jobs.jobs import SageMakerJobs

        return SageMakerJobs().status(records, detailed)

    def logs(self, record: JobRecord, follow: bool, rank: int | None) -> Iterator[str]:
        from hyperpod_launcher.backends.sm_jobs.jobs import SageMakerJobs

        return SageMakerJobs().logs(record, follow, rank)

    def cancel(self, record: JobRecord) -> str:
        from hyperpod_launcher.backends.sm_jobs.jobs import SageMakerJobs

        return SageMakerJobs().cancel(record)

    def validate(self, spec: JobSpec) -> None:
        validate_values(spec)

    def render(self, spec: JobSpec, launch: LaunchOptions) -> SageMakerRequest:
        job = plan(spec, launch.wait)
        submission = f"{spec.name}_submission.sh"
        files = dict(job.files)
        files[runner.REQUEST] = RenderedFile(json.dumps(job.request, indent=2) + "\n")
        files[LAUNCH_PY] = RenderedFile(runner_source(), 0o755)
        files[submission] = RenderedFile(
            templating.render(
                "sm_jobs/submission.sh.j2",
                spec=spec,
                version=__version__,
                secret_env=job.secret_env,
                job_name=job.job_name,
            ),
            0o755,
        )
        result = os.path.join(spec.job_dir, f"sm_result-{spec.launch_id}.json")
        # launch.py runs in the launch's own folder: what it uploads is this launch's.
        argv = (sys.executable, os.path.join(spec.launch_dir, LAUNCH_PY), "--result", result)
        return SageMakerRequest(
            files,
            argv,
            job.summary,
            job_dir=spec.launch_dir,
            launch_id=spec.launch_id,
            job_name=job.job_name,
            mode=job.mode,
            payload=job.request,
            secret_env=job.secret_env,
            wait=job.wait,
        )

    def check_secrets(self, request: SageMakerRequest, secrets: Secrets) -> None:
        """Secrets sent in the job's Environment meet its value limit as plain values do."""
        from hyperpod_launcher.backends.sm_jobs.checks import MAX_ENV_VALUE

        for name in request.secret_env:
            value = secrets.env.get(name) or ""
            if len(value) > MAX_ENV_VALUE:
                raise UserError(
                    f"{name}: the secret's value (not shown) has {len(value)} characters; "
                    f"SageMaker takes environment values of at most {MAX_ENV_VALUE} "
                    "(CreateTrainingJob Environment)"
                )

    def submit(self, request: SageMakerRequest, secrets: Secrets) -> Submitted:
        if not sdk_installed():
            raise BackendError(f"the SageMaker Python SDK is not installed: {SDK_EXTRA}")
        log_path = os.path.join(request.job_dir, f"sm_submit-{request.launch_id}.log")
        proc = subprocess.Popen(
            request.submit_argv,
            cwd=request.job_dir,
            env={**os.environ, **secrets.env},  # launch.py reads request.secret_env from it
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        with open(log_path, "a", encoding="utf-8") as log:
            for raw in proc.stdout:
                line = secrets.mask(raw.decode(errors="replace"))
                log.write(line)
                log.flush()
                sys.stdout.write(line)
                sys.stdout.flush()
        returncode = proc.wait()
        result = _read_json(request.result)
        if returncode != 0 or not result.get("TrainingJobName"):
            message = result.get("error") or f"launch.py exited with status {returncode}"
            raise BackendError(f"SageMaker submit failed: {message} (log: {log_path})")
        details: dict[str, object] = {
            "training_job_name": result["TrainingJobName"],
            "training_job_arn": result.get("TrainingJobArn"),
            "training_job_status": result.get("TrainingJobStatus"),
            "region": result.get("Region"),
            "log": log_path,
        }
        if request.wait:
            exit_code = 0 if result.get("TrainingJobStatus") == "Completed" else 1
            details["exit_code"] = exit_code
            return Submitted(result["TrainingJobName"], exit_code, details)
        return Submitted(result["TrainingJobName"], 0, details)

    def dry_run(
        self, spec: JobSpec, request: SageMakerRequest, jobdir: Any, say: Callable[[str], None]
    ) -> list[str]:
        """With the SDK, the exact CreateTrainingJob request launch.py would send, also kept as
        create_training_job.json. No AWS call, no upload."""
        if not sdk_installed():
            say(f"dry run: the exact CreateTrainingJob request needs the SDK: {SDK_EXTRA}")
            return []
        if request.mode != "sdk_recipe" and spec.code.location:
            # The source folder is filled from the launcher's checkout, made at submit.
            say("dry run: the exact CreateTrainingJob request needs the code checkout (at submit)")
            return []
        if spec.code.is_local and spec.code.checkout_dir:
            # launch.py serves the SDK's code clone from this checkout, as at submit; a
            # local repository needs no network, so the dry run makes it too.
            from hyperpod_launcher.prepare import checkout as code

            code.checkout(spec.code, Secrets())
        with tempfile.TemporaryDirectory(prefix="hpl-sm-preview-") as tmp:
            outcome_path = os.path.join(tmp, "outcome.json")
            proc = subprocess.run(
                [sys.executable, str(PREVIEW), request.submit_argv[1], outcome_path],
                cwd=request.job_dir,
                # Secret values never reach a dry run: the request shows placeholders.
                env={**os.environ, **dict.fromkeys(request.secret_env, "****")},
                capture_output=True,
                text=True,
                check=False,
                stdin=subprocess.DEVNULL,
            )
            outcome = _read_json(outcome_path)
        body = outcome.get("CreateTrainingJob")
        if proc.returncode != 0 or body is None:
            lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            message = outcome.get("error") or (lines[-1:] or ["(no output)"])[0]
            clone = re.search(r"'clone', '([^']+)'", message)
            if clone:
                raise BackendError(
                    f"dry run: the SageMaker SDK could not clone {clone.group(1)}; it needs the "
                    "network (git.repo_url_or_path=<local repository> works offline)"
                )
            raise BackendError(f"dry run: launch.py failed before CreateTrainingJob: {message}")
        text = json.dumps(body, indent=2)
        say("CreateTrainingJob request: " + text)
        jobdir.write(REQUEST_JSON, text + "\n")
        return [REQUEST_JSON]
