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
# not load it at all. The CMake consumer also builds proto_user.c on a
# SHARED library holding kv.proto's generated code (fling_protobuf_generate
# must expose its headers PUBLIC). Then examples/kv is built against the
# prefix as a user's project, its server started, its client run against
# it (exact output), and the server stopped with SIGTERM, then SIGINT
# (exit 0, exact shutdown lines). Last, examples/cluster is built against
# the prefix.
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

# ---- the cluster programs and scripts ------------------------------------
# Installed into bin, executable, and runnable from there: the client plans
# the grep example from the installed prefix alone.
for f in fling-jobmanager fling-taskmanager fling start-cluster.sh \
         stop-cluster.sh; do
    [[ -x $prefix/bin/$f ]] || fail "bin/$f is not installed under $prefix"
done
if [[ -x $prefix/bin/fling ]]; then
    plan=$("$prefix/bin/fling" plan "$src/examples/jobs/grep.json" \
        --input /in --output /out --pattern x 2>&1)
    first=${plan%%$'\n'*}
    [[ $first == "StreamGraph of job 'grep': 3 nodes, 2 edges" ]] ||
        fail "bin/fling plan printed '$first' first"
fi

# ---- a user library of functions for jobs, on <fling/udf.h> alone -------
# Built against the prefix's headers only (no fling library), strictly; it
# must export its ABI version and its functions.
# shellcheck disable=SC2086 # $san is a word list on purpose
if [[ ! -f $prefix/include/fling/udf.h ]]; then
    fail "include/fling/udf.h is not installed under $prefix"
elif ! "$cc" -std=c11 -Wall -Wextra -Werror $san -fPIC -shared \
        -fvisibility=hidden -I"$prefix/include" \
        -o "$work/libudf_example.so" "$src/examples/jobs/udf/udf_example.c"; then
    fail "udf: examples/jobs/udf/udf_example.c does not build against $prefix"
else
    syms=$(nm -D --defined-only "$work/libudf_example.so" | awk '{print $3}' |
        grep -E '^(fl_udf_abi_version|square|square_open|square_close|words)$' |
        LC_ALL=C sort | tr '\n' ' ')
    if [[ $syms != "fl_udf_abi_version square square_close square_open words " ]]; then
        fail "udf: libudf_example.so exports '$syms'"
    else
        note "udf: the example user library built against $prefix"
    fi
fi

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

# check_proto_user EXE: the program that links a shared proto library
# (consumer/CMakeLists.txt) loads it, runs without LD_LIBRARY_PATH and
# says OK.
check_proto_user() {
    local exe=$1 out deps
    if [[ ! -x $exe ]]; then
        fail "proto-library: $exe was not built"
        return
    fi
    deps=$(env -u LD_LIBRARY_PATH ldd "$exe" 2>&1)
    if ! grep -q 'libkvproto_shared\.so => ' <<<"$deps"; then
        fail "proto-library: $exe does not load libkvproto_shared.so; ldd says:"
        echo "$deps" >&2
    fi
    if ! out=$(env -u LD_LIBRARY_PATH "$exe" 2>&1); then
        fail "proto-library: $exe failed: $out"
    elif [[ $out != "proto_user: OK" ]]; then
        fail "proto-library: $exe printed '$out', not 'proto_user: OK'"
    else
        note "proto-library: passed"
    fi
}

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
        check_proto_user "$work/consumer/proto_user"
    else
        fail "cmake: building the consumer project failed"
    fi
else
    fail "cmake: configuring the consumer project (find_package(fling)) failed"
fi

# ---- (c) examples/kv, built as a user's project ---------------------------
# Configure and build examples/kv against the prefix, start its server,
# run its client against it (exact output), then stop the server with a
# signal and check that it exits 0 with its shutdown lines. Each run is
# bounded: a server that does not answer in time is killed.
kv_src=$src/examples/kv
kv=$work/kv
token=0123456789abcdef0123456789abcdef
wrong=0123456789abcdef0123456789abcd10 # its last byte ^ 0xff, as the client
limit=60                               # seconds any one step may take

# kv_start LABEL: starts kv_server on port 0 with $token, its stdout on fd 3
# (a FIFO, read as it writes), and sets kv_pid and kv_addr. Fails unless it
# prints its address and token within $limit seconds.
kv_start() {
    local label=$1 line
    rm -f "$work/kv.fifo"
    mkfifo "$work/kv.fifo" || die "mkfifo $work/kv.fifo failed"
    env -u LD_LIBRARY_PATH "$kv/kv_server" 0 "$token" \
        >"$work/kv.fifo" 2>"$work/kv_server.$label.err" &
    kv_pid=$!
    exec 3<"$work/kv.fifo"
    kv_addr=
    kv_out=()
    if read -r -t "$limit" -u 3 line; then
        kv_out+=("$line")
        kv_addr=${line#kv_server: serving }
    fi
    if read -r -t "$limit" -u 3 line; then
        kv_out+=("$line")
    fi
    if [[ ! $kv_addr =~ ^fling\.tcp://127\.0\.0\.1:[0-9]+/kv$ ||
          ${kv_out[1]:-} != "kv_server: fencing token $token" ]]; then
        fail "kv $label: kv_server did not print its address and token; it said:"
        printf '%s\n' "${kv_out[@]}" >&2
        cat "$work/kv_server.$label.err" >&2
        kill -KILL "$kv_pid" 2>/dev/null
        wait "$kv_pid" 2>/dev/null
        exec 3<&-
        return 1
    fi
    return 0
}

# kv_stop LABEL SIGNAL EXPECTED...: sends SIGNAL to the server, waits at
# most $limit seconds for its exit, and checks status 0 and its whole
# stdout (the periodic "stats:" lines left out, their timing varies)
# against the EXPECTED lines.
kv_stop() {
    local label=$1 sig=$2 rc line st
    shift 2
    kill "-$sig" "$kv_pid"
    # Its output until it closes stdout by exiting; a read that waits
    # longer than $limit means it hangs: kill it.
    while true; do
        if read -r -t "$limit" -u 3 line; then
            [[ $line == "kv_server: stats: "* ]] || kv_out+=("$line")
        else
            st=$?
            if [[ $st -gt 128 ]]; then
                kv_out+=("(no exit within $limit s: killed)")
                kill -KILL "$kv_pid"
            fi
            break
        fi
    done
    wait "$kv_pid"
    rc=$?
    exec 3<&-
    if [[ $rc -ne 0 ]]; then
        fail "kv $label: kv_server exited with status $rc after SIG$sig"
    fi
    if [[ $(printf '%s\n' "${kv_out[@]}") != $(printf '%s\n' "$@") ]]; then
        fail "kv $label: kv_server printed:"
        printf '%s\n' "${kv_out[@]}" >&2
        echo "install_test: instead of:" >&2
        printf '%s\n' "$@" >&2
    fi
    if [[ $rc -ne 0 || -s $work/kv_server.$label.err ]]; then
        echo "install_test: kv_server's stderr:" >&2
        cat "$work/kv_server.$label.err" >&2
    fi
    [[ $rc -eq 0 ]] && note "kv $label: kv_server stopped cleanly on SIG$sig"
}

if ! command -v mkfifo >/dev/null 2>&1; then
    fail "kv: mkfifo is not installed: the examples/kv checks are skipped"
elif ! "$cmake" -S "$kv_src" -B "$kv" \
         -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
         -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$san -Werror" \
         -DCMAKE_EXE_LINKER_FLAGS="$san"; then
    fail "kv: configuring examples/kv against $prefix failed"
elif ! "$cmake" --build "$kv"; then
    fail "kv: building examples/kv against $prefix failed"
else
    deps=$(env -u LD_LIBRARY_PATH ldd "$kv/kv_server" 2>&1)
    if ! grep -q "libfling\.so.* => $libdir/" <<<"$deps"; then
        fail "kv: kv_server does not load libfling.so from $libdir; ldd says:"
        echo "$deps" >&2
    fi

    # A client run against the server, then SIGTERM.
    if kv_start client; then
        if client=$(timeout "$limit" env -u LD_LIBRARY_PATH \
                        "$kv/kv_client" "$kv_addr" "$token" 2>&1); then
            rc=0
        else
            rc=$?
        fi
        expected="connected to $kv_addr
put 100 keys, pipelined (100 calls issued, then waited for)
get key-003 = value-3
get key-099 = value-99
delete key-003: deleted
get key-003: FL_ENOENT (not found): no key 'key-003'
list key-00: 9 keys: key-000 key-001 key-002 key-004 key-005 key-006 key-007 key-008 key-009
with a wrong token: FL_EFENCING (fencing token mismatch): Fencing token mismatch: Ignoring message Get because the fencing token $wrong is not the fenced endpoint kv's current one.
done"
        if [[ $rc -ne 0 ]]; then
            fail "kv: kv_client exited with status $rc (124: timed out); it said:"
            echo "$client" >&2
        elif [[ $client != "$expected" ]]; then
            fail "kv: kv_client printed:"
            echo "$client" >&2
            echo "install_test: instead of:" >&2
            echo "$expected" >&2
        else
            note "kv: kv_client passed"
        fi
        kv_stop client TERM "kv_server: serving $kv_addr" \
            "kv_server: fencing token $token" \
            "kv_server: SIGTERM received, stopping" \
            "kv_server: stopped cleanly with 99 keys after 105 calls"
    fi

    # SIGINT (Ctrl-C) stops it the same way.
    if kv_start sigint; then
        kv_stop sigint INT "kv_server: serving $kv_addr" \
            "kv_server: fencing token $token" \
            "kv_server: SIGINT received, stopping" \
            "kv_server: stopped cleanly with 0 keys after 0 calls"
    fi
fi

# ---- (d) examples/cluster, built as a user's project -----------------------
# Built only: tests/examples/ runs its programs from the build tree.
cx=$work/cluster
if ! "$cmake" -S "$src/examples/cluster" -B "$cx" \
         -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
         -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$san -Werror" \
         -DCMAKE_EXE_LINKER_FLAGS="$san" >/dev/null ||
     ! "$cmake" --build "$cx" >/dev/null; then
    fail "cluster: building examples/cluster against $prefix failed"
else
    note "cluster: examples/cluster built against $prefix"
fi

if [[ $failures -ne 0 ]]; then
    echo "install_test: $failures problem(s), see the FAIL lines above" >&2
    exit 1
fi
note "all four builds, the shared proto library, examples/kv and examples/cluster passed"
exit 0
