#!/usr/bin/env bash
# The Slurm recipe of docs/operations.md on a real one-node Slurm cluster on localhost.
#
#   scripts/test_slurm.sh [VQSIM]      (VQSIM: the vqsim binary, default target/release/vqsim)
#
# Needs root (it installs slurm-wlm and munge with apt-get when absent, and starts munged,
# slurmctld and slurmd). Everything else lives in a temp directory, removed at the end:
# slurm.conf, state, logs, the results. It submits scripts/slurm_sweep.sh as a 3-task job
# array on scenarios/smoke.toml, waits, runs `vqsim merge` and `vqsim plot`, and checks that
# the merged runs.csv (apart from `seconds`) and history.csv equal a single-process run.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
vqsim=$(realpath "${1:-target/release/vqsim}")
scenario=$repo/scenarios/smoke.toml

if [[ $(id -u) -ne 0 ]]; then
    echo "test_slurm.sh: needs root to install and start Slurm" >&2
    exit 2
fi
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

work=$(mktemp -d /tmp/vqsim-slurm.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "test_slurm.sh: $*" >&2
    for log in "$work"/log/*.log "$work"/out/vqsim-*.log; do
        [[ -f $log ]] && { echo "== $log" >&2; tail -20 "$log" >&2; }
    done
    exit 1
}

# munge: a key of our own and a socket in the temp dir, so a system munged is left alone.
mkdir -p "$work"/{munge,log,state,spool,out}
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chown -R munge:munge "$work/munge" 2>/dev/null || true
chmod 700 "$work/munge"
chmod 400 "$work/munge/munge.key"
sock=$work/munge/munge.socket
munged --force --key-file="$work/munge/munge.key" --socket="$sock" \
    --pid-file="$work/munge/munged.pid" --log-file="$work/log/munged.log" \
    --seed-file="$work/munge/seed" || fail "munged did not start"
pids+=("$(cat "$work/munge/munged.pid")")

host=$(hostname -s)
cpus=$(nproc)
cat >"$work/slurm.conf" <<EOF
ClusterName=vqsimtest
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$sock
CredType=cred/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$work/slurm.conf

slurmctld -D -f "$SLURM_CONF" >"$work/log/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" >"$work/log/slurmd.out" 2>&1 &
pids+=($!)
for _ in $(seq 60); do
    sinfo -h -o %T 2>/dev/null | grep -qx idle && break
    sleep 1
done
sinfo -h -o %T | grep -qx idle || fail "the node did not come up: $(sinfo 2>&1)"

# The recipe of docs/operations.md: a 3-task array of shards, 1 CPU each, then merge and plot.
cd "$work/out"
jid=$(VQSIM=$vqsim sbatch --parsable --array=1-3 --cpus-per-task=1 --time=10 \
    "$repo/scripts/slurm_sweep.sh" "$scenario" "$work/out") || fail "sbatch failed"
for _ in $(seq 240); do
    [[ -z $(squeue -h -j "$jid" 2>/dev/null) ]] && break
    sleep 1
done
[[ -z $(squeue -h -j "$jid") ]] || fail "job $jid still queued or running after 4 minutes"
for task in 1 2 3; do
    state=$(scontrol show job "${jid}_$task" 2>/dev/null | grep -o 'JobState=[A-Z]*' || true)
    [[ -z $state || $state == JobState=COMPLETED ]] || fail "task $task: $state"
    grep -q "in shard $task/3," "vqsim-${jid}_$task.log" || fail "task $task did not run shard $task/3"
done
"$vqsim" merge "$work/out/smoke" >/dev/null || fail "vqsim merge failed"
"$vqsim" plot "$work/out/smoke" >/dev/null || fail "vqsim plot failed"

# The same scenario in one process, for comparison.
"$vqsim" run "$scenario" --out "$work/single" --no-report >/dev/null 2>&1
# `seconds` is the only column allowed to differ; found by name, as columns get added.
without_seconds() {
    local col
    col=$(head -1 "$1" | tr ',' '\n' | grep -nx seconds | cut -d: -f1)
    cut -d, -f"1-$((col - 1)),$((col + 1))-" "$1"
}
cmp <(without_seconds "$work/out/smoke/runs.csv") <(without_seconds "$work/single/smoke/runs.csv") ||
    fail "merged runs.csv differs from the single-process run"
cmp "$work/out/smoke/history.csv" "$work/single/smoke/history.csv" ||
    fail "merged history.csv differs from the single-process run"
ls "$work/out/smoke/figures/"*.png >/dev/null || fail "no figures"
echo "test_slurm.sh: 3-task array job $jid on a one-node Slurm cluster merged to the single-process tables"
