#!/bin/bash
# Proves scripts/slurm/sweep.sbatch on a real Slurm, all on this machine:
#  1. installs Debian's slurm-wlm and munge when they are missing (apt-get, as root);
#  2. starts a private munged (own key, socket, pid and log in a temporary folder), then
#     slurmctld and slurmd on localhost from a generated slurm.conf (one node with
#     CPUs=$(nproc), proctrack/linuxproc, task/none, SlurmUser=root, free ports, state,
#     spool, pid and log files in the temporary folder) -- nothing system-wide is touched;
#  3. submits `sbatch --wait --array=0-3` of an 8-run synthetic sweep through the
#     template, merges the shards with `elag sweep --collect` and checks that the merged
#     ledger holds every run of the expansion exactly once, all ok;
#  4. stops the daemons it started, by their pid files (trap on EXIT).
#
# usage: tests/integration/slurm_sweep.sh BUILD_DIR      (BUILD_DIR holds the elag binary)
# exit:  0 passed, 1 failed, 77 skipped (Slurm could not be installed or started here;
#        the reason and the daemon logs are printed). The temporary folder is kept on
#        failure (KEEP=0: never, KEEP=1: always).
set -u

say() { echo "slurm_sweep: $*" >&2; }
skip() { say "SKIPPED: $*"; exit 77; }
fail() { say "FAILED: $*"; exit 1; }

[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
build=$(cd "$1" 2>/dev/null && pwd) || fail "no build folder $1"
elag=$build/elag
src=$(cd "$(dirname "$0")/../.." && pwd)
sbatch_script=$src/scripts/slurm/sweep.sbatch
[ -x "$elag" ] || fail "no elag binary at $elag (build first)"
[ -r "$sbatch_script" ] || fail "no $sbatch_script"
t0=$(date +%s)

# ---- 1. packages ----
have_slurm() {
    for c in slurmctld slurmd sbatch sinfo scontrol munged; do
        command -v "$c" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin command -v "$c" >/dev/null 2>&1 || return 1
    done
}
export PATH=$PATH:/usr/sbin:/sbin
if ! have_slurm; then
    [ "$(id -u)" = 0 ] || skip "slurm-wlm/munge are not installed and we are not root to install them"
    command -v apt-get >/dev/null || skip "slurm-wlm/munge are not installed and there is no apt-get"
    say "installing slurm-wlm and munge with apt-get (once per machine)"
    log=$(mktemp)
    # services must not be started by the packages' scripts: we start our own daemons
    policy_added=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        policy_added=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends slurm-wlm munge >"$log" 2>&1 ||
        { apt-get update -q >>"$log" 2>&1 &&
          apt-get install -y -q --no-install-recommends slurm-wlm munge >>"$log" 2>&1; }
    rc=$?
    [ -n "$policy_added" ] && rm -f /usr/sbin/policy-rc.d
    if [ $rc -ne 0 ]; then
        tail -n 15 "$log" >&2
        skip "apt-get install slurm-wlm munge failed (no network or no Debian archive?)"
    fi
    rm -f "$log"
    have_slurm || skip "slurm-wlm installed but slurmctld/slurmd/sbatch/munged are not on PATH"
fi
say "$(slurmctld -V 2>/dev/null || echo 'slurm ?'), $(munged --version 2>&1 | head -n 1)"

# ---- 2. daemons ----
tmp=$(mktemp -d /tmp/elag-slurm-XXXXXX)
chmod 755 "$tmp"
# shellcheck disable=SC2317  # cleanup runs from the EXIT trap
cleanup() {
    local rc=$?
    for pf in "$tmp/slurmd.pid" "$tmp/slurmctld.pid" "$tmp/munged.pid"; do
        [ -s "$pf" ] || continue
        pid=$(cat "$pf")
        kill "$pid" 2>/dev/null || continue
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    if [ "${KEEP:-0}" = 1 ] || { [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ "${KEEP:-}" != 0 ]; }; then
        say "kept $tmp (logs: munged.log slurmctld.log slurmd.log, job output: out/)"
    else
        rm -rf "$tmp"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

show_logs() {
    for f in munged.log slurmctld.log slurmd.log; do
        [ -s "$tmp/$f" ] && { echo "---- $f (last lines)" >&2; tail -n 12 "$tmp/$f" >&2; }
    done
}

free_port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
        echo $((20000 + RANDOM % 20000))
}

# munge: a private key and socket, so a system munged (if any) is left alone
dd if=/dev/urandom of="$tmp/munge.key" bs=1024 count=1 status=none
chmod 600 "$tmp/munge.key"
mkdir -m 755 "$tmp/munge"
munged --force --key-file="$tmp/munge.key" --socket="$tmp/munge/munge.socket" \
    --pid-file="$tmp/munged.pid" --log-file="$tmp/munged.log" --seed-file="$tmp/munge.seed" \
    >"$tmp/munged.out" 2>&1 || { cat "$tmp/munged.out" >&2; show_logs; skip "munged does not start"; }
for _ in $(seq 50); do [ -S "$tmp/munge/munge.socket" ] && break; sleep 0.1; done
munge --socket="$tmp/munge/munge.socket" -n </dev/null | unmunge --socket="$tmp/munge/munge.socket" >/dev/null 2>&1 ||
    { show_logs; skip "munged started but munge/unmunge fail"; }

host=$(hostname -s)
cpus=$(nproc)
cport=$(free_port)
dport=$(free_port)
[ "$cport" = "$dport" ] && dport=$((cport + 1))
mkdir -p "$tmp/state" "$tmp/spool" "$tmp/out"
cat >"$tmp/slurm.conf" <<EOF
ClusterName=elagtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$cport
SlurmdPort=$dport
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$tmp/munge/munge.socket
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SwitchType=switch/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
MaxArraySize=1001
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=elag Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$tmp/slurm.conf

slurmctld -c -f "$SLURM_CONF" >"$tmp/slurmctld.out" 2>&1 ||
    { cat "$tmp/slurmctld.out" >&2; show_logs; skip "slurmctld does not start"; }
slurmd -f "$SLURM_CONF" >"$tmp/slurmd.out" 2>&1 ||
    { cat "$tmp/slurmd.out" >&2; show_logs; skip "slurmd does not start"; }
state=
for _ in $(seq 150); do
    state=$(sinfo -h -n "$host" -o %T 2>/dev/null | head -n 1)
    case "$state" in
        idle*|mixed*|allocated*) break ;;
        down*|drain*) scontrol update nodename="$host" state=resume >/dev/null 2>&1 ;;
    esac
    sleep 0.2
done
case "$state" in
    idle*|mixed*|allocated*) say "slurmctld and slurmd up: node $host ($cpus CPUs) is $state" ;;
    *) show_logs; skip "node $host did not become idle (state '${state:-none}')" ;;
esac

# ---- 3. the sweep through the job-array template ----
cat >"$tmp/base.yaml" <<'EOF'
name: slurm-tiny
device: cpu
data:
  dataset: synthetic
  synthetic: {train: 256, test: 128, features: 8, classes: 3}
model:
  layers:
    - {type: linear, out_features: 16}
    - {type: relu}
    - {type: linear, out_features: 3}
train: {epochs: 1, batch_size: 32}
prune: {method: gmp, target: 0.5, start: 0, end: 0.5, frequency: 2}
EOF
cat >"$tmp/sweep.yaml" <<'EOF'
base: base.yaml
grid:
  prune.target: [0.5, 0.9]
  seed: [1, 2, 3, 4]
EOF
"$elag" sweep "$tmp/sweep.yaml" --dry-run >"$tmp/dry.txt" || fail "elag sweep --dry-run failed"
expected=$(awk 'NR > 2 && $2 ~ /^[0-9a-f]+$/ { print $2 }' "$tmp/dry.txt" | sort)
n_expected=$(echo "$expected" | grep -c .)
[ "$n_expected" = 8 ] || fail "the dry run lists $n_expected runs, not 8"

export ELAG=$elag
s0=$(date +%s)
sbatch --wait --array=0-3 --cpus-per-task=1 --chdir="$tmp" --output="$tmp/out/task-%A_%a.log" \
    "$sbatch_script" "$tmp/sweep.yaml" "$tmp/out" >"$tmp/sbatch.out" 2>&1
rc=$?
cat "$tmp/sbatch.out" >&2
if [ $rc -ne 0 ]; then
    for f in "$tmp"/out/task-*.log; do [ -e "$f" ] && { echo "---- $f" >&2; cat "$f" >&2; }; done
    show_logs
    fail "sbatch --wait --array=0-3 exited $rc"
fi
say "array of 4 tasks done in $(( $(date +%s) - s0 )) s"
n_logs=$(find "$tmp/out" -maxdepth 1 -name "task-*.log" | wc -l)
[ "$n_logs" = 4 ] || fail "expected 4 task logs, found $n_logs"

"$elag" sweep --collect "$tmp"/out/shard-* --out "$tmp/out" || fail "elag sweep --collect failed"

# every run of the expansion exactly once, all ok, and each shard ran its own slice
ids=$(grep -o '"run_id":"[0-9a-f]*"' "$tmp/out/results.jsonl" | cut -d'"' -f4 | sort)
n_rows=$(wc -l <"$tmp/out/results.jsonl")
[ "$n_rows" = 8 ] || fail "merged ledger has $n_rows lines, want 8"
[ "$ids" = "$expected" ] || fail "merged ledger ids differ from the expansion:
$(diff <(echo "$expected") <(echo "$ids"))"
[ "$(echo "$ids" | uniq -d)" = "" ] || fail "a run is in the merged ledger twice"
n_ok=$(grep -c '"status":"ok"' "$tmp/out/results.jsonl")
[ "$n_ok" = 8 ] || fail "$n_ok of 8 rows are ok"
for i in 0 1 2 3; do
    n=$(wc -l <"$tmp/out/shard-$i/results.jsonl" 2>/dev/null || echo 0)
    [ "$n" = 2 ] || fail "shard $i ran $n runs, want 2"
done
for id in $ids; do
    [ -s "$tmp/out/runs/$id/summary.json" ] || fail "no merged run folder for $id"
done
[ "$(wc -l <"$tmp/out/results.csv")" = 9 ] || fail "results.csv is not 8 rows + header"
"$elag" report "$tmp/out" --no-plots >/dev/null 2>&1 || fail "elag report on the merged folder failed"

say "PASSED: 8 runs in 4 array tasks, merged ledger holds each exactly once ($(( $(date +%s) - t0 )) s in all)"
exit 0
