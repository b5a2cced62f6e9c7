"""Follow SageMaker training jobs: DescribeTrainingJob, CloudWatch logs, StopTrainingJob.

Kept apart from the renderer: these commands need boto3 (imported here, on use) and none of
the rendering code. The job's name and region come from its job.json record.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from hyperpod_launcher.jobs import index as job_index
from hyperpod_launcher.jobs import status as st
from hyperpod_launcher.jobs.records import JobRecord
from hyperpod_launcher.util.errors import BackendError

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
STARTING = {
    "Starting",
    "LaunchingMLInstances",
    "PreparingTrainingStack",
    "Pending",
    "Downloading",
    "DownloadingTrainingImage",
}
FINISHED = {"Completed", "Failed", "Stopped"}


def _client(service: str, record: JobRecord) -> Any:
    try:
        import boto3
    except ImportError:
        raise BackendError(
            "boto3 is not installed: pip install 'hyperpod-launcher[sagemaker]'"
        ) from None
    region = job_index.full(record).details.get("region")
    return _call(boto3.client, service_name=service, **({"region_name": region} if region else {}))


def _call(fn: Any, **kwargs: Any) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        return fn(**kwargs)
    except NoCredentialsError:
        raise BackendError(
            "no AWS credentials found: configure them (aws configure, AWS_PROFILE or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) for the account that ran the job"
        ) from None
    except ClientError as err:
        raise BackendError(f"AWS: {err.response['Error'].get('Message') or err}") from None
    except BotoCoreError as err:
        raise BackendError(f"cannot reach AWS: {err}") from None


def _name(record: JobRecord) -> str:
    return str(record.details.get("training_job_name") or record.job_id)


def _status(job: dict[str, Any]) -> st.JobStatus:
    word = job["TrainingJobStatus"]
    secondary = job.get("SecondaryStatus", "")
    if word == "InProgress":
        state = st.PENDING if secondary in STARTING else st.RUNNING
    else:
        state = {
            "Completed": st.SUCCEEDED,
            "Failed": st.FAILED,
            "Stopping": st.RUNNING,
            "Stopped": st.CANCELLED,
        }.get(word, st.UNKNOWN)
    backend_word = f"{word}/{secondary}" if secondary and secondary != word else word
    return st.JobStatus(state, backend_word, detail=job.get("FailureReason", ""))


class SageMakerJobs:
    def status(self, records: list[JobRecord], detailed: bool = False) -> list[st.JobStatus]:
        result = []
        for record in records:
            client = _client("sagemaker", record)
            result.append(
                _status(_call(client.describe_training_job, TrainingJobName=_name(record)))
            )
        return result

    def logs(self, record: JobRecord, follow: bool, rank: int | None) -> Iterator[str]:
        from hyperpod_launcher.jobs.logfiles import rank_filter

        logs = _client("logs", record)
        keep = rank_filter(rank)
        kwargs: dict[str, Any] = {"logGroupName": LOG_GROUP, "logStreamNamePrefix": _name(record)}
        seen: set[str] = set()
        while True:
            finished = not follow or self.status([record])[0].finished
            token = None
            while True:
                page = _call(
                    logs.filter_log_events, **kwargs, **({"nextToken": token} if token else {})
                )
                for event in page.get("events", []):
                    if event["eventId"] not in seen:
                        seen.add(event["eventId"])
                        if keep(event["message"]):
                            yield event["message"].rstrip("\n")
                token = page.get("nextToken")
                if not token:
                    break
            if finished:
                return
            time.sleep(5)

    def cancel(self, record: JobRecord) -> str:
        name = _name(record)
        client = _client("sagemaker", record)
        job = _call(client.describe_training_job, TrainingJobName=name)
        if job["TrainingJobStatus"] in FINISHED:
            return f"training job {name} already finished: {_status(job).describe()}"
        _call(client.stop_training_job, TrainingJobName=name)
        return f"stopping training job {name}"
