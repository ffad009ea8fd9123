# Sourced by test.sh and bench.sh: install Debian packages without starting
# their services.
#
# Debian starts a package's service when it is installed (prometheus,
# nginx, blackbox_exporter). pulse's tests and benches start their own
# instances, on their own ports, and stop them by PID; they need no
# system-wide server, and must never stop one the machine already runs. So
# apt is kept from starting services (a policy-rc.d that answers 101,
# "action forbidden", the Debian way) rather than the services killed by
# name afterwards. A policy-rc.d already in place (a container's) is left
# alone.

# apt_install PACKAGE...: install as root; otherwise say what to run.
apt_install() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing $*: run 'sudo apt-get install $*' (what needs them is skipped)" >&2
        return 0
    fi
    local policy=/usr/sbin/policy-rc.d made=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        made=1
    fi
    local ok=0
    # An install interrupted earlier (a killed run) leaves dpkg half done,
    # and every later apt-get install fails until it is finished.
    DEBIAN_FRONTEND=noninteractive dpkg --configure -a >/dev/null 2>&1 || true
    apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null ||
        ok=$?
    if [ -n "$made" ]; then rm -f "$policy"; fi
    if [ "$ok" -ne 0 ]; then echo "could not install $*: what needs them is skipped" >&2; fi
    return 0
}
