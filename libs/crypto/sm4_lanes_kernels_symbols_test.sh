#!/usr/bin/env bash
# Proves each SM4 lanes kernel archive defines only its two entry points and nothing the linker
# could merge with another file's copy (weak or unique symbols: inline functions, templates,
# their guard variables). A kernel is compiled for instructions other CPUs lack; a merged copy
# would run them there (sm4_lanes_kernels.h). Fails naming the symbol.
set -euo pipefail
status=0
archives=0
for archive in $(find -L libs/crypto -name 'libsm4_lanes_*.a'); do
  archives=$((archives + 1))
  # Defined symbols only: kind and demangled name.
  while read -r kind name; do
    case "$kind" in
      T)
        case "$name" in
          tongka::crypto::internal::Sm4MacGroup* | tongka::crypto::internal::Sm4SubBytes*) ;;
          *)
            echo "FAIL: $archive exports $name (only the kernel entry points may)"
            status=1
            ;;
        esac
        ;;
      t | r | d | b | n) ;;
      # The exception-handling personality pointer (data, no instructions) that some builds
      # (sanitizers, for one) emit in every object.
      V) [[ "$name" == DW.ref.__gxx_personality_v0 ]] || {
        echo "FAIL: $archive defines $name with linkage 'V' (weak/unique/common)"
        status=1
      } ;;
      *)
        echo "FAIL: $archive defines $name with linkage '$kind' (weak/unique/common)"
        status=1
        ;;
    esac
  done < <(nm -C --defined-only "$archive" | awk 'NF >= 3 { kind = $2; $1 = ""; $2 = ""; sub(/^  /, ""); print kind, $0 }')
done
if [[ $archives -ne 2 ]]; then
  echo "FAIL: expected the 2 kernel archives, found $archives"
  exit 1
fi
[[ $status -eq 0 ]] && echo "PASS: 2 kernel archives export only their entry points"
exit $status
