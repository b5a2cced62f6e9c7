#!/usr/bin/env bash
# Stop the local Slurm testbed started by up.sh (slurmd x2, slurmctld, munged), by pid file.
# Idempotent. Spool, logs and job state stay in ${HPL_SLURM_STATE:-/var/tmp/hpl-slurm}.
set -euo pipefail

STATE=${HPL_SLURM_STATE:-/var/tmp/hpl-slurm}

# running PID COMM: PID is a live (not zombie) process named COMM; a stale pid file may point at
# an unrelated process by now.
running() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    [[ $stat == "$1 ($2) "* && $stat != "$1 ($2) Z"* ]]
}

# stop COMM PIDFILE...: SIGTERM all of them, wait up to 10 s, then SIGKILL what is left.
stop() {
    local comm=$1 f pid pids=() end
    shift
    for f in "$@"; do
        [[ -s $f ]] || continue
        pid=$(<"$f")
        if [[ $pid =~ ^[0-9]+$ ]] && running "$pid" "$comm"; then
            kill -TERM "$pid" && pids+=("$pid")
        fi
    done
    end=$((SECONDS + 10))
    for pid in "${pids[@]}"; do
        while running "$pid" "$comm" && ((SECONDS < end)); do sleep 0.1; done
        if running "$pid" "$comm"; then
            echo "down.sh: $comm $pid ignored SIGTERM, killing" >&2
            kill -KILL "$pid" 2>/dev/null || true
            while running "$pid" "$comm"; do sleep 0.1; done
        fi
    done
    rm -f "$@"
    ((${#pids[@]} == 0)) || echo "down.sh: stopped $comm (${pids[*]})" >&2
}

stop slurmd "$STATE/node1/slurmd.pid" "$STATE/node2/slurmd.pid"
stop slurmctld "$STATE/slurmctld.pid"
stop munged "$STATE/munge/munged.pid"
