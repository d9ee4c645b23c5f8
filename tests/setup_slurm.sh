#!/usr/bin/env bash
# Single-node Slurm (slurmctld + slurmd + munge) on Debian 12 without systemd, for the job tests.
# Recipe: shared/reference/local_cluster.md ("Tested CI script"). Needs root.
#   tests/setup_slurm.sh up     install if missing, configure, start what is not running (idempotent);
#                               prints STARTED=1 when it started daemons, STARTED=0 when Slurm was up
#   tests/setup_slurm.sh down   stop the daemons, but only if 'up' started them (marker file)
set -euo pipefail
MARKER=/run/saturate-slurm.started
export DEBIAN_FRONTEND=noninteractive
t() { echo "[setup_slurm $(date +%T)] $*" >&2; }

node_idle() { sinfo -h -o %T 2>/dev/null | grep -Eqx 'idle|mixed|allocated'; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

up() {
  if command -v sinfo >/dev/null && node_idle; then t "Slurm already up"; echo STARTED=0; return 0; fi
  [ "$(id -u)" = 0 ] || { echo "setup_slurm: needs root (apt-get, munged, slurmd)" >&2; exit 1; }
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
    t "apt-get install slurm-wlm munge"
    apt-get install -y -q --no-install-recommends slurm-wlm slurmctld slurmd slurm-client munge >/tmp/slurm-apt.log 2>&1 \
      || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends slurm-wlm slurmctld slurmd slurm-client munge >/tmp/slurm-apt.log 2>&1; }
  fi
  NODE=$(hostname -s)
  read -r CPUS SOCK CORES THREADS < <(slurmd -C | tr ' ' '\n' | awk -F= '/^CPUs=/{c=$2}/^SocketsPerBoard=/{s=$2}/^CoresPerSocket=/{k=$2}/^ThreadsPerCore=/{h=$2}END{print c,s,k,h}')
  mkdir -p /etc/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm
  chown slurm:slurm /var/lib/slurm/slurmctld /var/log/slurm 2>/dev/null || true
  cat >/etc/slurm/slurm.conf <<CONF
ClusterName=ci
SlurmctldHost=$NODE
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
KillWait=10
NodeName=$NODE CPUs=$CPUS SocketsPerBoard=$SOCK CoresPerSocket=$CORES ThreadsPerCore=$THREADS RealMemory=1024 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  if ! alive /run/munge/munged.pid; then
    t "start munged"
    install -d -o munge -g munge -m 0755 /run/munge
    runuser -u munge -- /usr/sbin/munged
  fi
  munge -n | unmunge >/dev/null
  alive /run/slurmctld.pid || { t "start slurmctld"; rm -f /run/slurmctld.pid; /usr/sbin/slurmctld; }
  alive /run/slurmd.pid || { t "start slurmd"; rm -f /run/slurmd.pid; /usr/sbin/slurmd; }
  for _ in $(seq 120); do node_idle && break; sleep 0.5; done
  node_idle || { echo "setup_slurm: node never became idle; see /var/log/slurm/" >&2; sinfo >&2 || true; exit 1; }
  touch "$MARKER"
  t "Slurm up"; echo STARTED=1
}

stop_pid() {
  local pf=$1
  if alive "$pf"; then
    local pid; pid=$(cat "$pf"); kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$pf"
}

down() {
  [ -f "$MARKER" ] || { t "not started by setup_slurm.sh: left running"; return 0; }
  for pf in /run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid; do stop_pid "$pf"; done
  rm -f "$MARKER"; t "Slurm stopped"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
