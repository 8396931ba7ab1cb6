#!/usr/bin/env bash
# A real single-node SLURM cluster on loopback, for CI runs of `snakemake --profile slurm`.
# Debian 12 packages (slurm 22.05, munge), run as root, no systemd needed.
#
#   .ci/slurm.sh start     install (if needed) and start munged, mariadb, slurmdbd, slurmctld, slurmd
#   .ci/slurm.sh status    print the node and the daemons' PIDs; exit 1 if the cluster is not up
#   .ci/slurm.sh stop      stop exactly the daemons this script started (PIDs under $BASE/run)
#
# Environment:
#   BASE=/tmp/maccabench-slurm  state, logs, PIDs; JobCompLoc=$BASE/log/jobcomp.txt
#   WITH_DBD=1   accounting (slurmdbd + mariadb) so `sacct` works: the project's profile then runs
#                unchanged (the SLURM executor polls sacct). WITH_DBD=0 saves ~15 s of install but
#                needs `--slurm-status-command squeue` on the snakemake command line.
#   FAKE_GPU=1   declare one GPU (gres gpu:fake:1 backed by /dev/null) so jobs asking `gpu: 1`
#                (`--gpus=1`) are accepted and run one at a time; there is no real GPU behind it.
# Adapted from shared/slurm/start_slurm.sh (measured facts in shared/slurm/README.md): the config
# must sit at /etc/slurm/slurm.conf because the executor's job step drops SLURM_CONF.
set -euo pipefail

BASE=${BASE:-/tmp/maccabench-slurm}
WITH_DBD=${WITH_DBD:-1}
FAKE_GPU=${FAKE_GPU:-1}
RUN=$BASE/run
LOG=$BASE/log
CONF=/etc/slurm/slurm.conf
ACTION=${1:-start}

say() { echo "[slurm.sh] $*"; }

wait_for() {  # wait_for <seconds> <what> <command...>
  local t=$1 what=$2; shift 2
  for _ in $(seq 1 $((t * 4))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  echo "[slurm.sh] timeout after ${t}s waiting for $what; logs in $LOG" >&2
  return 1
}

daemons_alive() {
  local f any=0
  for f in "$RUN"/*.pid; do
    [ -s "$f" ] || continue
    kill -0 "$(cat "$f")" 2>/dev/null || return 1
    any=1
  done
  [ "$any" = 1 ]
}

stop_all() {
  local d f pid
  for d in slurmd slurmctld slurmdbd mariadbd munged; do   # reverse start order
    f=$RUN/$d.pid
    [ -s "$f" ] || continue
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
      say "stopped $d ($pid)"
    fi
    rm -f "$f"
  done
  # Leave /etc/slurm as we found it: drop only the links this script made.
  for l in "$CONF" /etc/slurm/gres.conf /etc/slurm/slurmdbd.conf; do
    if [ -L "$l" ] && [[ "$(readlink "$l")" == "$BASE"/* ]]; then rm -f "$l"; fi
  done
}

status() {
  if daemons_alive && scontrol ping 2>/dev/null | grep -q "is UP"; then
    sinfo -N -o "%N %t %c %m %G"
    say "up: $(cd "$RUN" && for f in *.pid; do printf '%s=%s ' "${f%.pid}" "$(cat "$f")"; done)"
    return 0
  fi
  say "not running (no live daemons recorded in $RUN)"
  return 1
}

case "$ACTION" in
  stop) stop_all; exit 0 ;;
  status) status; exit $? ;;
  start) ;;
  *) echo "usage: $0 start|status|stop" >&2; exit 2 ;;
esac

if [ "$(id -u)" != 0 ]; then echo "[slurm.sh] run as root (it installs packages and starts daemons)" >&2; exit 2; fi
if daemons_alive 2>/dev/null && scontrol ping 2>/dev/null | grep -q "is UP"; then
  say "already running"; status; exit 0
fi
# Never overwrite the configuration of a real SLURM installation.
if [ -e "$CONF" ] && ! { [ -L "$CONF" ] && [[ "$(readlink "$CONF")" == "$BASE"/* ]]; }; then
  echo "[slurm.sh] $CONF exists and was not written by this script; refusing to replace it." >&2
  echo "           On a machine with a real SLURM, run the test against it instead (see docs/slurm.md)." >&2
  exit 2
fi

# 1. packages (skipped when already installed) -----------------------------------------------
pkgs="slurmctld slurmd slurm-client munge"
[ "$WITH_DBD" = 1 ] && pkgs="$pkgs slurmdbd mariadb-server"
missing=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' $pkgs 2>/dev/null | awk '$2 != "installed" {print $1}' || true)
for p in $pkgs; do dpkg-query -W "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "${missing// /}" ]; then
  say "installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt_opts=(-o DPkg::Lock::Timeout=600 -qq)     # other jobs on the machine may hold the dpkg lock
  apt-get "${apt_opts[@]}" update
  apt-get "${apt_opts[@]}" install -y --no-install-recommends $pkgs >/dev/null
fi

mkdir -p "$BASE/state/ctld" "$BASE/state/d" "$RUN" "$LOG"

# 2. munge ----------------------------------------------------------------------------------
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
fi
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  install -d -o munge -g munge -m 0755 /run/munge
  setsid setpriv --reuid=munge --regid=munge --init-groups \
    /usr/sbin/munged --foreground >"$LOG/munged.out" 2>&1 &
  echo $! >"$RUN/munged.pid"
  wait_for 10 munged sh -c 'munge -n | unmunge'
fi

# 3. config ---------------------------------------------------------------------------------
CPUS=$(nproc)
MEM=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -1)
if [ "$WITH_DBD" = 1 ]; then
  ACCT="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux"
else
  ACCT="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
fi
GRES_TYPES=""; NODE_GRES=""
if [ "$FAKE_GPU" = 1 ]; then
  GRES_TYPES="GresTypes=gpu"; NODE_GRES=" Gres=gpu:fake:1"
  echo "NodeName=localhost Name=gpu Type=fake File=/dev/null" >"$BASE/gres.conf"
  ln -sf "$BASE/gres.conf" /etc/slurm/gres.conf
elif [ -L /etc/slurm/gres.conf ] && [[ "$(readlink /etc/slurm/gres.conf)" == "$BASE"/* ]]; then
  rm -f /etc/slurm/gres.conf
fi
cat >"$BASE/slurm.conf" <<EOF
# Single-node SLURM on loopback for CI (written by .ci/slurm.sh)
ClusterName=ci
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$BASE/state/ctld
SlurmdSpoolDir=$BASE/state/d
SlurmctldPidFile=$RUN/slurmctld.pidfile
SlurmdPidFile=$RUN/slurmd.pidfile
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
MinJobAge=600
KillWait=5
$ACCT
AccountingStoreFlags=job_comment
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG/jobcomp.txt
$GRES_TYPES
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN$NODE_GRES
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP DefMemPerCPU=1000
EOF
mkdir -p /etc/slurm
ln -sf "$BASE/slurm.conf" "$CONF"

# 4. accounting: mariadb + slurmdbd ------------------------------------------------------------
if [ "$WITH_DBD" = 1 ]; then
  mkdir -p "$BASE/db"; chown mysql:mysql "$BASE/db"
  [ -d "$BASE/db/mysql" ] || mariadb-install-db --user=mysql --datadir="$BASE/db" \
      --skip-test-db --auth-root-authentication-method=socket >"$LOG/mariadb-install.log" 2>&1
  install -d -o mysql -g mysql /run/mysqld
  setsid /usr/sbin/mariadbd --user=mysql --datadir="$BASE/db" \
    --socket=/run/mysqld/mysqld.sock --skip-networking \
    --innodb-buffer-pool-size=64M --innodb-lock-wait-timeout=900 \
    --log-error="$LOG/mariadb.err" >/dev/null 2>&1 &
  echo $! >"$RUN/mariadbd.pid"
  wait_for 30 mariadb mariadb -uroot -e 'select 1'
  mariadb -uroot -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmpw';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  cat >"$BASE/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.pidfile
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurmpw
StorageLoc=slurm_acct_db
EOF
  chmod 600 "$BASE/slurmdbd.conf"
  ln -sf "$BASE/slurmdbd.conf" /etc/slurm/slurmdbd.conf
  setsid /usr/sbin/slurmdbd -D >"$LOG/slurmdbd.out" 2>&1 &
  echo $! >"$RUN/slurmdbd.pid"
  wait_for 30 slurmdbd sh -c "grep -q 'slurmdbd version .* started' '$LOG/slurmdbd.log'"
fi

# 5. slurmctld + slurmd ----------------------------------------------------------------------
setsid /usr/sbin/slurmctld -D -i >"$LOG/slurmctld.out" 2>&1 &
echo $! >"$RUN/slurmctld.pid"
wait_for 30 slurmctld sh -c 'scontrol ping | grep -q "is UP"'
setsid /usr/sbin/slurmd -D -N localhost >"$LOG/slurmd.out" 2>&1 &
echo $! >"$RUN/slurmd.pid"
wait_for 30 "node idle" sh -c '[ "$(sinfo -h -n localhost -o %t)" = idle ]'

# 6. one real job end to end -------------------------------------------------------------------
srun -t 1 -n 1 true
if [ "$WITH_DBD" = 1 ]; then wait_for 20 "sacct record" sh -c 'sacct -X -n | grep -q .'; fi
status
