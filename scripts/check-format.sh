#!/usr/bin/env bash
# scripts/check-format.sh - fail when a C file git tracks is not formatted
# as .clang-format says.
#
#   scripts/check-format.sh     (from any directory)
#
# Runs `clang-format --dry-run -Werror` on every tracked *.c and *.h, except
# generated code (*.pb-c.c, *.pb-c.h: protoc-c output, never edited). Peers
# written in other languages (bench/peers/grpc/*.cc, Erlang) are not C and
# are not matched. Prints the offending files, one a line, then the fix
# (`make format`), and exits 1; prints one summary line and exits 0 when
# every file is clean. Exits 2 when clang-format is missing.
#
# The reference is Debian's clang-format 14 (bookworm); scripts/deps.sh
# installs it (`scripts/deps.sh format`). Another major version may format
# differently: the script says so on stderr but still checks.
#
# Environment:
#   CLANG_FORMAT   the clang-format to run (default: clang-format)
set -euo pipefail

cd "$(dirname "$0")/.."

CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
REFERENCE_MAJOR=14

if ! command -v "$CLANG_FORMAT" >/dev/null 2>&1; then
    echo "check-format: $CLANG_FORMAT not found; install it with" \
        "'scripts/deps.sh format' (Debian package clang-format)" >&2
    exit 2
fi
version=$("$CLANG_FORMAT" --version)
if [[ ! "$version" =~ version\ $REFERENCE_MAJOR\. ]]; then
    echo "check-format: warning: the reference is clang-format" \
        "$REFERENCE_MAJOR; this is: $version" >&2
fi

files=()
while IFS= read -r f; do
    files+=("$f")
done < <(git ls-files -- '*.c' '*.h' ':!:*.pb-c.c' ':!:*.pb-c.h')
if [[ ${#files[@]} -eq 0 ]]; then
    echo "check-format: git lists no C files: nothing checked" >&2
    exit 1
fi

# One run over all files is the fast path. When it fails, one run per file
# names the files by exit status, whatever the shape of the diagnostics.
bad=()
if ! "$CLANG_FORMAT" --dry-run -Werror "${files[@]}" >/dev/null 2>&1; then
    for f in "${files[@]}"; do
        if ! "$CLANG_FORMAT" --dry-run -Werror "$f" >/dev/null 2>&1; then
            bad+=("$f")
        fi
    done
    if [[ ${#bad[@]} -eq 0 ]]; then
        echo "check-format: $CLANG_FORMAT failed on the whole list but on" \
            "no file alone:" >&2
        "$CLANG_FORMAT" --dry-run -Werror "${files[@]}" >&2 || true
        exit 1
    fi
fi

if [[ ${#bad[@]} -ne 0 ]]; then
    echo "check-format: ${#bad[@]} of ${#files[@]} files are not formatted:" >&2
    printf '%s\n' "${bad[@]}"
    echo "check-format: run 'make format' (clang-format -i) and commit" >&2
    exit 1
fi
echo "check-format: ${#files[@]} files clean ($version)"
