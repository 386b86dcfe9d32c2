# Process bookkeeping shared by hack/control-plane.sh and hack/node.sh: only ever signal PIDs we
# recorded, and only while they still run the recorded binary (never by name).
# The caller sets PROCS_DIR (where <name>.pid, <name>.bin and <name>.log live) and defines log and die.

# pid_is <name>: true if $PROCS_DIR/<name>.pid is alive and its argv[0] is the binary recorded in
# $PROCS_DIR/<name>.bin.
pid_is() {
  local name=$1 pid bin argv0
  [ -f "$PROCS_DIR/$name.pid" ] && [ -f "$PROCS_DIR/$name.bin" ] || return 1
  pid=$(cat "$PROCS_DIR/$name.pid"); bin=$(cat "$PROCS_DIR/$name.bin")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  argv0=$(tr '\0' '\n' < "/proc/$pid/cmdline" 2>/dev/null | head -n1) || return 1
  [ "$argv0" = "$bin" ]
}

# stop_one <name>: SIGTERM, up to 20 s, then SIGKILL; forgets the PID.
stop_one() {
  local name=$1 pid i
  if ! pid_is "$name"; then
    [ -f "$PROCS_DIR/$name.pid" ] && log "$name (pid $(cat "$PROCS_DIR/$name.pid")) is not running (or the PID now belongs to another program); not signalling it"
    rm -f "$PROCS_DIR/$name.pid"
    return 0
  fi
  pid=$(cat "$PROCS_DIR/$name.pid")
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 100); do pid_is "$name" || break; sleep 0.2; done
  if pid_is "$name"; then
    log "$name (pid $pid) ignored SIGTERM for 20s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for i in $(seq 50); do pid_is "$name" || break; sleep 0.1; done
  fi
  rm -f "$PROCS_DIR/$name.pid"
}

# start <name> <binary> args...: run detached (own session, so the caller's Ctrl-C/job teardown does
# not hit it), log into $PROCS_DIR/<name>.log, record PID and binary path.
start() {
  local name=$1 bin=$2; shift 2
  # A background child of a non-interactive shell is not a process-group leader, so setsid execs in
  # place and $! is the server's own PID (checked by pid_is below).
  # fd 9 (a caller's flock) is closed so the server does not hold the lock for its whole life.
  setsid "$bin" "$@" </dev/null >"$PROCS_DIR/$name.log" 2>&1 9<&- &
  echo $! > "$PROCS_DIR/$name.pid"
  echo "$bin" > "$PROCS_DIR/$name.bin"
  sleep 0.2
  if ! pid_is "$name"; then
    # Our own child of a moment ago: if it lives on under another argv[0] (a wrapper that execs
    # something else) it must not leak.
    kill -KILL "$(cat "$PROCS_DIR/$name.pid")" 2>/dev/null || true
    tail -n 30 "$PROCS_DIR/$name.log" >&2 || true
    die "$name exited right after start, or runs as something other than $bin (log: $PROCS_DIR/$name.log)"
  fi
}

free_ports() { # prints N distinct free loopback ports; sockets are held until all are chosen so they differ
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}
