#!/usr/bin/env bash
# Run one shard of a vqsim sweep per Slurm array task.
#
#   jid=$(sbatch --parsable --array=1-8 scripts/slurm_sweep.sh scenarios/capacity.toml out)
#   sbatch --dependency=afterany:$jid --wrap "vqsim merge out/capacity && vqsim plot out/capacity"
#
# Task I of an N-task array runs shard I/N (runs whose index mod N = I-1) into OUT, which
# must be on a file system every node sees. Shards share OUT safely: each finished run is
# published by an atomic rename, and the last shard to finish assembles runs.csv and
# history.csv. The merge job is a safety net that also lists runs still missing.
#
# Time limit, scancel, node failure: Slurm's SIGTERM stops a shard cleanly (exit 130) and
# finished runs stay. Resubmit the same array to redo only the missing runs.
#
# Without Slurm, GNU parallel does the same on one machine (4 shards, 1 thread each):
#
#   parallel -j 4 vqsim run scenarios/capacity.toml --out out --shard {}/4 --threads 1 ::: 1 2 3 4; vqsim merge out/capacity
#
# or across machines sharing the working directory: add `-S host1,host2 --workdir .`.
#
# Environment: VQSIM = path to the vqsim binary (default: vqsim on PATH).
#SBATCH --job-name=vqsim
#SBATCH --cpus-per-task=2
#SBATCH --time=04:00:00
#SBATCH --output=vqsim-%A_%a.log
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: sbatch --array=1-N $0 SCENARIO OUT" >&2
    exit 2
fi
if [[ -z ${SLURM_ARRAY_TASK_ID:-} ]]; then
    echo "error: not a Slurm array task; submit with sbatch --array=1-N" >&2
    exit 2
fi

# Number from 1 whatever the array's first index (--array=0-7 works too).
shard=$((SLURM_ARRAY_TASK_ID - ${SLURM_ARRAY_TASK_MIN:-1} + 1))
exec "${VQSIM:-vqsim}" run "$1" --out "$2" \
    --shard "$shard/$SLURM_ARRAY_TASK_COUNT" \
    --threads "${SLURM_CPUS_PER_TASK:-1}"
