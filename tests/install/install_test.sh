#!/usr/bin/env bash
# tests/install/install_test.sh - an installed fling works for its users.
#
#   install_test.sh BUILD_DIR SOURCE_DIR [CC [SAN_FLAGS]]
#
# Installs BUILD_DIR with `cmake --install --prefix` into a temporary
# directory (removed on exit), then builds hello_fling.c four ways and runs
# each program:
#   pkg-config-shared   cc $(pkg-config --cflags --libs fling), LD_LIBRARY_PATH
#   pkg-config-static   pkg-config --static --libs, with -l:libfling.a
#   cmake-shared        find_package(fling) + fling::fling
#   cmake-static        find_package(fling) + fling::fling_static
# Each program must exit 0 and print "hello_fling <variant>: OK"; the shared
# ones must load libfling.so from the temporary prefix, the static ones must
# not load it at all.
#
# CC is the build's C compiler (default cc); SAN_FLAGS the build's
# -fsanitize flags as one word list (default none), used for compiling and
# linking every program. $CMAKE is the cmake to use (default cmake). Run by
# ctest as "install_test" (label install).
#
# Exit status: 0 when everything passed; 1 otherwise, after a "FAIL:" line
# per problem (the checks go on after a failure when they still can).
set -uo pipefail

if [[ $# -lt 2 || $# -gt 4 ]]; then
    echo "usage: $0 BUILD_DIR SOURCE_DIR [CC [SAN_FLAGS]]" >&2
    exit 2
fi
build=$1
src=$2
cc=${3:-cc}
san=${4:-}
cmake=${CMAKE:-cmake}
here=$src/tests/install

failures=0
fail() {
    echo "install_test: FAIL: $*" >&2
    failures=$((failures + 1))
}
die() {
    echo "install_test: FAIL: $*" >&2
    echo "install_test: stopped at the first fatal problem" >&2
    exit 1
}
note() { echo "install_test: $*"; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fling-install-test.XXXXXX") || die "mktemp -d failed"
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
work=$tmp/work
mkdir -p "$work" || die "cannot create $work"

note "build $build, source $src, cc $cc, sanitizer flags '${san}', prefix $prefix"

# ---- install --------------------------------------------------------------
"$cmake" --install "$build" --prefix "$prefix" ||
    die "'$cmake --install $build --prefix $prefix' failed"

[[ -f $prefix/include/fling/fling.h ]] ||
    die "include/fling/fling.h is not installed under $prefix"

pc=$(find "$prefix" -path '*/pkgconfig/fling.pc' -print -quit)
[[ -n $pc ]] || die "no pkgconfig/fling.pc installed under $prefix"
pcdir=$(dirname "$pc")
libdir=$(dirname "$pcdir") # <prefix>/lib or <prefix>/lib/<multiarch>
note "fling.pc: $pc; libdir $libdir"

for f in libfling.so libfling.a cmake/fling/flingConfig.cmake \
         cmake/fling/flingConfigVersion.cmake cmake/fling/flingTargets.cmake; do
    [[ -e $libdir/$f ]] || fail "$libdir/$f is not installed"
done
soname=$(find "$libdir" -maxdepth 1 -name 'libfling.so.*' -print -quit)
[[ -n $soname ]] || fail "no versioned libfling.so.* in $libdir"

# check_run VARIANT SHARED(yes|no) EXE [env...]: run EXE, check its status
# and output, and where libfling.so comes from.
check_run() {
    local variant=$1 shared=$2 exe=$3 out rc deps
    shift 3
    if [[ ! -x $exe ]]; then
        fail "$variant: $exe was not built"
        return
    fi
    deps=$(env "$@" ldd "$exe" 2>&1)
    if [[ $shared == yes ]]; then
        if ! grep -q "libfling\.so.* => $libdir/" <<<"$deps"; then
            fail "$variant: libfling.so is not loaded from $libdir; ldd says:"
            echo "$deps" >&2
        fi
    elif grep -q 'libfling\.so' <<<"$deps"; then
        fail "$variant: the static build loads libfling.so; ldd says:"
        echo "$deps" >&2
    fi
    out=$(env "$@" "$exe" "$variant" 2>&1)
    rc=$?
    echo "$out"
    if [[ $rc -ne 0 ]]; then
        fail "$variant: $exe exited with status $rc"
    elif ! grep -qx "hello_fling $variant: OK" <<<"$out" ||
         ! grep -q 'FL_ETIMEDOUT is "timed out"' <<<"$out"; then
        fail "$variant: $exe exited 0 but did not print the expected lines"
    else
        note "$variant: passed"
    fi
}

# ---- (a) pkg-config -------------------------------------------------------
# Warnings are errors here: the installed headers must compile cleanly in a
# user's strict C11 build.
cflags_user=(-std=c11 -Wall -Wextra -Werror)
# shellcheck disable=SC2206 # the flags are a word list on purpose
san_words=($san)

if ! command -v pkg-config >/dev/null 2>&1; then
    fail "pkg-config is not installed: the pkg-config builds are skipped"
else
    export PKG_CONFIG_PATH=$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
    pcdefs=()
    pc_prefix=$(pkg-config --variable=prefix fling) ||
        fail "pkg-config cannot read $pc"
    if [[ $(realpath -m "$pc_prefix") != $(realpath -m "$prefix") ]]; then
        fail "fling.pc says prefix=$pc_prefix but was installed under $prefix:" \
             "the installed fling.pc does not follow 'cmake --install --prefix'" \
             "(cmake/fling.pc.in is configured with CMAKE_INSTALL_PREFIX at" \
             "configure time). Going on with --define-variable=prefix=$prefix" \
             "to check the rest."
        pcdefs=(--define-variable=prefix="$prefix")
    fi

    # The shared library.
    if cflags=$(pkg-config "${pcdefs[@]}" --cflags fling) &&
       libs=$(pkg-config "${pcdefs[@]}" --libs fling); then
        note "pkg-config --cflags: $cflags; --libs: $libs"
        # shellcheck disable=SC2086 # pkg-config output is a word list
        if "$cc" "${cflags_user[@]}" "${san_words[@]}" $cflags \
               -o "$work/hello_pc_shared" "$here/hello_fling.c" \
               "${san_words[@]}" $libs; then
            check_run pkg-config-shared yes "$work/hello_pc_shared" \
                LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        else
            fail "pkg-config-shared: compiling hello_fling.c failed"
        fi
    else
        fail "pkg-config --cflags/--libs fling failed"
    fi

    # The static library: the same flags with -lfling replaced by
    # -l:libfling.a, so the linker cannot pick the shared one.
    if libs=$(pkg-config "${pcdefs[@]}" --static --libs fling); then
        static_libs=()
        for w in $libs; do
            if [[ $w == -lfling ]]; then
                static_libs+=(-l:libfling.a)
            else
                static_libs+=("$w")
            fi
        done
        note "pkg-config --static --libs: $libs -> ${static_libs[*]}"
        # shellcheck disable=SC2086 # pkg-config output is a word list
        if "$cc" "${cflags_user[@]}" "${san_words[@]}" $cflags \
               -o "$work/hello_pc_static" "$here/hello_fling.c" \
               "${san_words[@]}" "${static_libs[@]}"; then
            check_run pkg-config-static no "$work/hello_pc_static" \
                -u LD_LIBRARY_PATH
        else
            fail "pkg-config-static: compiling hello_fling.c failed"
        fi
    else
        fail "pkg-config --static --libs fling failed"
    fi
fi

# ---- (b) CMake: find_package(fling) ----------------------------------------
if "$cmake" -S "$here/consumer" -B "$work/consumer" \
       -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
       -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$san" \
       -DCMAKE_EXE_LINKER_FLAGS="$san"; then
    fling_dir=$(sed -n 's/^fling_DIR:[A-Z]*=//p' "$work/consumer/CMakeCache.txt")
    if [[ $(realpath -m "$fling_dir") != "$(realpath -m "$prefix")"/* ]]; then
        fail "cmake: find_package(fling) found $fling_dir, not the package under $prefix"
    fi
    if "$cmake" --build "$work/consumer"; then
        check_run cmake-shared yes "$work/consumer/hello_shared" -u LD_LIBRARY_PATH
        check_run cmake-static no "$work/consumer/hello_static" -u LD_LIBRARY_PATH
    else
        fail "cmake: building the consumer project failed"
    fi
else
    fail "cmake: configuring the consumer project (find_package(fling)) failed"
fi

if [[ $failures -ne 0 ]]; then
    echo "install_test: $failures problem(s), see the FAIL lines above" >&2
    exit 1
fi
note "all four builds passed"
exit 0
