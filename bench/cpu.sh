# Sourced by the bench scripts: CPU time (user + sys) of processes, the
# headline figure of every bench (rates on two shared cores depend on what
# else runs; CPU per event much less).
#
#   proc_cpu_s PID        CPU seconds PID and its children spent so far: utime +
#                         stime + cutime + cstime of PID (/proc/PID/stat) plus
#                         utime + stime of its live children. Read it before and
#                         after a run of a long-lived process (a broker, PostgreSQL's
#                         postmaster, whose backends are its children): a child
#                         that exits in between moves from one sum to the other.
#   cpu_run FILE CMD...   run CMD (stdout and stderr pass through, its exit code
#                         is returned) and write the CPU seconds it and its
#                         children spent to FILE
#   per_unit_us CPU_S N   microseconds of CPU per unit, two decimals

proc_cpu_s() {
  python3 - "$1" <<'PY'
import os, sys
def stat(pid):  # the fields after the command name: [0] is the state (field 3)
    with open("/proc/%s/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()
pid = sys.argv[1]
ticks = sum(int(x) for x in stat(pid)[11:15])  # utime, stime, cutime, cstime
for other in filter(str.isdigit, os.listdir("/proc")):
    try:
        s = stat(other)
    except OSError:
        continue  # exited meanwhile
    if s[1] == pid:  # its parent
        ticks += int(s[11]) + int(s[12])
print("%.3f" % (ticks / os.sysconf("SC_CLK_TCK")))
PY
}

cpu_run() {
  local file="$1"; shift
  python3 - "$file" "$@" <<'PY'
import resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
u = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write("%.3f\n" % (u.ru_utime + u.ru_stime))
sys.exit(code)
PY
}

per_unit_us() { awk -v c="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.2f", c * 1e6 / n; else print "-" }'; }
