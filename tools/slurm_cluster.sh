#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for the executor's tests.
#
#   tools/slurm_cluster.sh start   # as root: munged, slurmctld, slurmd; prints the state
#   tools/slurm_cluster.sh stop
#
# Needs Debian's `slurm-wlm` and `munge`. The cluster has one node (this host, all its
# CPUs and memory), one partition `debug` and no accounting (`scontrol show job` tells a
# job's state; `sacct` would need slurmdbd). Its files live under /tmp/hhi-slurm.
set -euo pipefail
dir=/tmp/hhi-slurm
cmd=${1:-start}
if [ "$cmd" = stop ]; then
  for p in slurmd slurmctld munged; do pkill -x "$p" 2>/dev/null || true; done
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "start the cluster as root" >&2; exit 1; }
mkdir -p "$dir"/{state,spool,log} /etc/slurm /run/munge /var/lib/munge /var/log/munge /etc/munge
host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=hhi
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
ReturnToService=2
MinJobAge=300
KillWait=5
OverTimeLimit=0
InactiveLimit=0
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
chmod 0400 /etc/munge/munge.key
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged 2>/dev/null || /usr/sbin/munged --force
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 1 30); do
  if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
    sinfo
    exit 0
  fi
  sleep 1
done
echo "the cluster did not come up; logs in $dir/log" >&2
sinfo >&2 || true
exit 1
