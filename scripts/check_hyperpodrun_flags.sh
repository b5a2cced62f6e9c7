#!/bin/bash
# Check the hyperpodrun flags of a HyperPodPyTorchJob's train_script.sh against the argument
# definitions of hyperpod-elastic-agent 1.1.3, in a throwaway venv.
#
# The agent requires torch < 2.12; this machine has torch 2.13, where `hyperpodrun --help`
# stops at start-up (torchrun defines --shutdown-timeout itself since 2.12, and argparse
# refuses the agent's second definition). So the venv installs the agent without its
# dependencies (torch comes from the system site-packages), builds torchrun's parser, lets the
# agent's own definition of that one option replace torchrun's, adds the agent's arguments
# with its own function, and parses the flags the launcher renders.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="$(mktemp -d)/venv"
trap 'rm -rf "$(dirname "$venv")"' EXIT
python3 -m venv --system-site-packages "$venv"
"$venv/bin/pip" install --quiet --no-deps hyperpod-elastic-agent==1.1.3

cd "$repo"
PYTHONPATH="$repo" "$venv/bin/python" - <<'EOF'
import re
import shlex
import tempfile

from torch.distributed.run import get_args_parser

from hyperpod_elastic_agent.run import add_additional_hyperpod_args
from hyperpod_launcher.launch.compose import plan

with tempfile.TemporaryDirectory() as tmp:
    the_plan = plan(("cluster=k8s", "cluster.use_hyperpod_pytorch_job=true",
                     "container=example.com/train:1", f"base_results_dir={tmp}"))
values = the_plan.files["k8s_template/values.yaml"][0]
import yaml
script = yaml.safe_load(values)["scripts"]["train_script.sh"]
block = re.search(r"\ntorchrun_args=\(\n(.*?)\n\)", script, re.S).group(1)
env = {"NNODES": "2", "NPROC_PER_NODE": "8", "HPL_AGENT_HOST": "0.0.0.0", "HPL_AGENT_PORT": "8080"}
flags = [shlex.split(line.strip())[0] for line in block.splitlines()]
flags = [re.sub(r"\$(\w+)", lambda m: env[m.group(1)], f) for f in flags]

parser = get_args_parser()
for container in (parser, *parser._action_groups):
    container.conflict_handler = "resolve"
add_additional_hyperpod_args(parser)
args = parser.parse_args([*flags, "train.py", "--x"])
print("hyperpodrun accepts:", " ".join(flags))
assert (args.nnodes, args.nproc_per_node, args.server_port) == ("2", "8", 8080), args
EOF
