# Sourced by scripts that start servers of their own (runbook-exporter.sh,
# screenshot-page.sh): a temporary directory `$tmp`, and an array `pids`
# that the script appends each process it starts to (`pids+=($!)`). At
# exit, however the script ends, those processes are stopped by PID and
# waited for, and `$tmp` is removed: a script stops only what it started,
# never by name.
tmp=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
