#!/usr/bin/env bash
# Checks that every C++ file tracked by git is formatted by clang-format (.clang-format, Google
# base). Prints the files that are not; `clang-format -i FILE` fixes one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bad=()
while IFS= read -r file; do
  [[ -f "$file" ]] || continue  # deleted in the working tree
  clang-format --dry-run -Werror "$file" >/dev/null 2>&1 || bad+=("$file")
done < <(git ls-files '*.cc' '*.h')
if ((${#bad[@]} > 0)); then
  printf 'not clang-formatted (run clang-format -i):\n' >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
echo "format: all C++ files are clang-formatted"
