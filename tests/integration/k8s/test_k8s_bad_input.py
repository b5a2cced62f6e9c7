"""Bad Kubernetes input: one line naming the key, the value and what is allowed; exit 2;
nothing written, nothing installed (helm is a recording stand-in that must stay unused)."""

from __future__ import annotations

from pathlib import Path

import k8s_standins
import pytest
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from hyperpod_launcher.cli.app import one_line
from hyperpod_launcher.launch.compose import plan
from hyperpod_launcher.util.errors import UserError
from tests.conftest import run_launcher

LLAMA = "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain"
BASE = ("cluster=k8s", "container=example.com/train:1", "instance_type=p5.48xlarge")

CASES: dict[str, tuple[tuple[str, ...], list[str]]] = {
    "invalid namespace": (
        ("cluster.namespace=Team_A",),
        ["cluster.namespace='Team_A'", "not a valid namespace", "at most 63 characters"],
    ),
    "unknown pullPolicy": (
        ("cluster.pullPolicy=Sometimes",),
        ["cluster.pullPolicy", "'Always', 'IfNotPresent', 'Never'", "'Sometimes'"],
    ),
    "unknown restartPolicy": (
        ("cluster.restartPolicy=Sometimes",),
        ["cluster.restartPolicy", "'Never', 'OnFailure', 'Always', 'ExitCode'"],
    ),
    "unknown cleanPodPolicy": (
        ("cluster.cleanPodPolicy=Some",),
        ["cluster.cleanPodPolicy", "'All', 'Running', 'OnlyComplete', 'None'"],
    ),
    "PVC without claimName": (
        ("cluster.persistent_volume_claims=[{mountPath:/fsx}]",),
        ["cluster.persistent_volume_claims[0]: claimName is required"],
    ),
    "PVC list holding null": (
        ("cluster.persistent_volume_claims=[null]",),
        ["cluster.persistent_volume_claims[0]: expected a mapping with claimName, mountPath"],
    ),
    "volume without hostPath": (
        ("cluster.volumes=[{volumeName:data,mountPath:/data}]",),
        ["cluster.volumes[0]: hostPath is required"],
    ),
    "label_selector not a mapping": (
        ("cluster.label_selector.required=[a,b]",),
        ["cluster.label_selector.required=[a,b]"],
    ),
    "label_selector weight out of range": (
        ("++cluster.label_selector.preferred={zone:[a]}", "cluster.label_selector.weights=[150]"),
        ["cluster.label_selector.weights[0]=150: not a valid weight (1 to 100)"],
    ),
    "label_selector values not a list": (
        ("++cluster.label_selector.required={zone:{a:b}}",),
        ["cluster.label_selector.required.zone: expected a list of label values"],
    ),
    "label_selector weights do not pair": (
        (
            "++cluster.label_selector.preferred={zone:[a],rack:[b]}",
            "cluster.label_selector.weights=[10]",
        ),
        ["cluster.label_selector.weights: 1 weight(s) for 2 preferred label(s)"],
    ),
    "label value over 63 characters": (
        (f"++cluster.custom_labels={{team:{'a' * 64}}}",),
        ["cluster.custom_labels.team=", "at most 63 characters, this one has 64"],
    ),
    "queue name over 63 characters": (
        (f"cluster.queue_name={'q' * 70}",),
        ["cluster.queue_name=", "at most 63 characters"],
    ),
    "misspelt cluster key": (
        ("+cluster.namepsace=team-a",),
        ["unknown key 'cluster.namepsace'", "did you mean 'namespace'"],
    ),
    "backoffLimit that cannot act": (
        ("cluster.backoffLimit=3",),
        ["cluster.backoffLimit=3 has no effect with cluster.restartPolicy=Never"],
    ),
    "no image": (("container=null",), ["container is not set", "set container=<image>"]),
    "local code path": (
        ("git.repo_url_or_path=/tmp",),
        ["git.repo_url_or_path='/tmp': a local path cannot reach Kubernetes pods"],
    ),
    "token in the clone URL": (
        ("git.repo_url_or_path=https://me:secret@example.com/r.git",),
        ["the URL carries a password or token", "set git.token"],
    ),
    "owned helm flag": (
        ("cluster.helm_args=['--set=image=x']",),
        ["cluster.helm_args: '--set=image=x' is not an extra `helm install` flag"],
    ),
    # The rules below come from the chart's values.schema.json, named by the cluster key.
    "CPU request not a quantity": (
        ("cluster.cpu_request=lots",),
        ["cluster.cpu_request='lots': not a valid CPU request (a Kubernetes quantity"],
    ),
    "rendezvous port out of range": (
        ("cluster.rdzv_port=70000",),
        ["cluster.rdzv_port=70000: not a valid port number (1 to 65535)"],
    ),
    "relative hostPath": (
        ("cluster.volumes=[{volumeName:data,hostPath:data}]",),
        ["cluster.volumes[0].hostPath='data': expected an absolute path"],
    ),
    "volume name not a DNS label": (
        ("cluster.volumes=[{volumeName:Data,hostPath:/data}]",),
        ["cluster.volumes[0].volumeName='Data': not a valid volume name (lowercase letters"],
    ),
    "pull secret not a DNS name": (
        ("cluster.image_pull_secrets=[Bad_Secret]",),
        ["cluster.image_pull_secrets[0]='Bad_Secret': not a valid Secret name"],
    ),
    "label value with a space": (
        ("++cluster.custom_labels={team:'a b'}",),
        ["cluster.custom_labels.team='a b': not a valid label value (letters, digits"],
    ),
    "negative ttl": (
        ("cluster.ttlSecondsAfterFinished=-5",),
        ["cluster.ttlSecondsAfterFinished=-5: expected 0 or more"],
    ),
    "Kueue priority class over 63 characters": (
        (f"cluster.priority_class={'p' * 64}",),
        ["cluster.priority_class=", "at most 63 characters, this one has 64"],
    ),
    "HyperPodPyTorchJob key on a PyTorchJob": (
        ("cluster.jobMaxRetryCount=3",),
        ["cluster.jobMaxRetryCount: only a HyperPodPyTorchJob reads it"],
    ),
}


# These run as real launches (exit code, one line, nothing written); the others
# are checked in-process, where the same UserError is raised before anything is written.
LAUNCHED = {
    "invalid namespace",
    "unknown pullPolicy",
    "unknown restartPolicy",
    "unknown cleanPodPolicy",
    "PVC without claimName",
    "volume without hostPath",
    "label_selector values not a list",
    "label value over 63 characters",
    "rendezvous port out of range",
    "relative hostPath",
}


@pytest.mark.parametrize("case", sorted(LAUNCHED))
def test_bad_k8s_input_is_one_line_exit_2_nothing_written(case: str, tmp_path: Path) -> None:
    overrides, expected = CASES[case]
    helm = k8s_standins.fake_helm(tmp_path)
    results = tmp_path / "results"
    proc = run_launcher(LLAMA, *BASE, *overrides, f"base_results_dir={results}", env=helm.env())
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    for fragment in expected:
        assert fragment in lines[0]
    assert not results.exists()
    assert helm.calls() == []


@pytest.mark.parametrize("case", sorted(set(CASES) - LAUNCHED))
def test_bad_k8s_input_is_refused_before_rendering(case: str, tmp_path: Path) -> None:
    overrides, expected = CASES[case]
    with pytest.raises((UserError, HydraException, OmegaConfBaseException)) as err:
        plan((LLAMA, *BASE, *overrides, f"base_results_dir={tmp_path}"))
    message = str(err.value) if isinstance(err.value, UserError) else one_line(err.value, [])
    assert "\n" not in message
    for fragment in expected:
        assert fragment in message or fragment.removeprefix("error: ") in message
