#!/usr/bin/env bash
# Runs a command and prints its wall time and how long the machine's CPUs were busy meanwhile
# (/proc/stat: user, nice, system, irq, softirq; not steal, the host's time for other VMs), in
# CPU-seconds. Unlike `time`, this counts the processes the command's children daemonise (Ray's
# raylet, agents and workers).
# Meaningful on an otherwise idle machine (Linux only).
#   bash benchmarks/machine_busy.sh make test
set -uo pipefail
busy() { read -r _ u n s _ _ q sq _ < /proc/stat; echo $((u + n + s + q + sq)); }
ticks=$(getconf CLK_TCK)
b0=$(busy); t0=$(date +%s.%N)
"$@"; rc=$?
b1=$(busy); t1=$(date +%s.%N)
python3 -c "print(f'wall {$t1 - $t0:.1f} s, machine busy {($b1 - $b0) / $ticks:.0f} CPU-s, exit status $rc')"
exit $rc
