#!/usr/bin/env bash
# Run a command as this machine would on a smaller CPU class, so that the suite's
# CPU-dependent branches (bfloat16, AVX-512 tiles, the bf16 refusal) run on both sides
# from one machine:
#
#   tests/as_cpu_class.sh avx2 -- env GLUON_CLASSICS_DATA=../shared/data python -m pytest -q
#
# Three things change, and only for the command: /proc/cpuinfo's flags lose the
# instructions above the class (a bind mount in a private mount namespace: the package
# and the tests read the flags there), oneDNN's max ISA is capped (DNNL_MAX_CPU_ISA), and
# our kernels are compiled for the class (GLUON_CLASSICS_MARCH, part of their cache key).
# A class can only take instructions away: faking bf16 or AMX that the CPU lacks would
# crash on the first such instruction. Needs root (unshare -m).
set -euo pipefail
usage="usage: tests/as_cpu_class.sh {avx2|avx512} -- COMMAND..."
class=${1:-}; [ "${2:-}" = -- ] || { echo "$usage" >&2; exit 2; }
shift 2
case $class in
  # Zen 3, Haswell..Skylake client: AVX2, no AVX-512, no bf16
  avx2) drop='avx512[a-z0-9_]*|amx[a-z0-9_]*'; isa=AVX2; march=haswell ;;
  # Skylake-SP..Ice Lake: AVX-512 without bf16 or AMX
  avx512) drop='avx512_bf16|amx[a-z0-9_]*'; isa=AVX512_CORE; march=skylake-avx512 ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
grep -qw avx2 /proc/cpuinfo || { echo "as_cpu_class: this CPU has no AVX2: it is below $class" >&2; exit 2; }
if [ "$class" = avx512 ] && ! grep -qw avx512f /proc/cpuinfo; then
  echo "as_cpu_class: this CPU has no AVX-512: it cannot stand in for $class" >&2; exit 2
fi
[ "$(id -u)" = 0 ] || { echo "as_cpu_class: needs root (a private mount namespace)" >&2; exit 2; }

fake=$(mktemp "${TMPDIR:-/tmp}/cpuinfo-$class.XXXXXX")
trap 'rm -f "$fake"' EXIT
sed -E "/^flags/ s/ ($drop)\b//g" /proc/cpuinfo >"$fake"
echo "as_cpu_class: $class (flags cut in /proc/cpuinfo, DNNL_MAX_CPU_ISA=$isa, GLUON_CLASSICS_MARCH=$march)" >&2
DNNL_MAX_CPU_ISA=$isa MKLDNN_MAX_CPU_ISA=$isa GLUON_CLASSICS_MARCH=$march \
  unshare -m sh -c 'mount --bind "$0" /proc/cpuinfo && exec "$@"' "$fake" "$@"
