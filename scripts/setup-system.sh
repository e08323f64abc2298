#!/usr/bin/env bash
# Installs the system packages the build needs, once: libclang for the
# bindgen step of librocksdb-sys (see ../shared/docs/BUILD.md), and iptables
# and iproute2 for the WAN emulation tests. Idempotent.
set -euo pipefail
need=()
[ -e /usr/lib/llvm-14/lib/libclang.so ] || ls /usr/lib/llvm-*/lib/libclang.so >/dev/null 2>&1 || need+=(libclang-dev)
# The WAN emulation (geo-bench `--wan nfqueue`) runs iptables and ip inside
# network namespaces it creates.
command -v iptables-restore >/dev/null 2>&1 || need+=(iptables)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  echo "installing system packages: ${need[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
