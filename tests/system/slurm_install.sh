# Sourced by the Slurm system tests: install_slurm installs slurmd,
# slurmctld, slurm-client and munge with apt-get when missing (root only),
# logging to $state/apt.log; it calls the test's skip() (a failure) when it cannot.
install_slurm() {
  local need=()
  for p in slurmd slurmctld slurm-client munge; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
  done
  [ ${#need[@]} = 0 ] && return 0
  [ "$(id -u)" = 0 ] || skip "Slurm not installed and not root (apt-get install ${need[*]})"
  echo "$(basename "$0"): installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q --no-install-recommends \
    "${need[@]}" > "$state/apt.log" 2>&1 ||
    { DEBIAN_FRONTEND=noninteractive timeout 300 apt-get update -q > /dev/null 2>&1;
      DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q --no-install-recommends \
        "${need[@]}" > "$state/apt.log" 2>&1; } ||
    { tail -5 "$state/apt.log"; skip "cannot install ${need[*]}"; }
}
