#!/usr/bin/env bash
# scripts/test-certs.sh - a test CA and certificates for fling's TLS tests,
# the examples and the docs, made with the openssl command line only.
#
#   scripts/test-certs.sh OUTDIR
#
# Writes into OUTDIR (created if missing), every key EC P-256 in PEM, mode
# 0600, every certificate PEM, mode 0644, valid for 30 days:
#   ca.key ca.crt                   the test CA (self-signed)
#   server.key server.crt           signed by ca; SAN DNS:localhost,
#                                   IP:127.0.0.1; EKU serverAuth
#   client.key client.crt           signed by ca; same SAN; EKU clientAuth
#   node.key node.crt               signed by ca; same SAN; EKU serverAuth
#                                   and clientAuth (a service that both
#                                   listens and dials, as a cluster's
#                                   programs do)
#   other-ca.key other-ca.crt       a second CA, which fling does not trust
#   other-client.key other-client.crt   a client cert signed by other-ca
#   self-signed.key self-signed.crt     a self-signed client cert
#   expired.key expired.crt         a client cert signed by ca, expired in
#                                   January 2020 (openssl 3.4's
#                                   `x509 -not_before/-not_after` if
#                                   present, else `openssl ca` with explicit
#                                   -startdate/-enddate; no faketime)
# Every run re-creates the whole set (new keys, new CA): it is made in a
# scratch folder inside OUTDIR and moved into place only when complete, so
# OUTDIR holds one consistent set, the old or the new. Other files in OUTDIR
# are left alone. Prints each file it wrote. Exit 0 on success, 1 when
# openssl fails, 2 on a usage error, a missing openssl, or an OUTDIR it
# cannot write.
set -euo pipefail

prog=test-certs.sh
die() { # CODE MESSAGE
    echo "$prog: $2" >&2
    exit "$1"
}

if [ $# -ne 1 ] || [ -z "$1" ]; then
    die 2 "usage: $prog OUTDIR"
fi
out=$1

command -v openssl >/dev/null 2>&1 ||
    die 2 "openssl not found in PATH; install the Debian package openssl (scripts/deps.sh test)"

if ! mkdir -p -- "$out" 2>/dev/null || [ ! -d "$out" ]; then
    die 2 "cannot create OUTDIR '$out'; give a folder you can write"
fi
tmp=$(mktemp -d "$out/.test-certs.XXXXXX" 2>/dev/null) ||
    die 2 "cannot write to OUTDIR '$out'; give a folder you can write"
trap 'rm -rf -- "$tmp"' EXIT
umask 077

DAYS=30
SUBJ_PREFIX="/O=fling test"

# One configuration for every step, so the system's openssl.cnf plays no part.
cat >"$tmp/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
[node_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
[ca]
default_ca = expired_ca
[expired_ca]
database = $ENV::TC_DIR/index.txt
new_certs_dir = $ENV::TC_DIR
serial = $ENV::TC_DIR/serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
[policy_any]
organizationName = optional
commonName = supplied
EOF
export TC_DIR=$tmp
cnf=$tmp/openssl.cnf

# ssl NAME ARGS...: runs openssl, showing its output only when it fails.
ssl() {
    local what=$1
    shift
    if ! openssl "$@" >"$tmp/openssl.log" 2>&1; then
        cat "$tmp/openssl.log" >&2
        die 1 "openssl failed making $what: openssl $*"
    fi
}

key() { # NAME
    ssl "$1.key" genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$tmp/$1.key"
}

ca() { # NAME CN
    key "$1"
    ssl "$1.crt" req -config "$cnf" -new -x509 -key "$tmp/$1.key" \
        -subj "$SUBJ_PREFIX/CN=$2" -days "$DAYS" -sha256 \
        -extensions ca_ext -out "$tmp/$1.crt"
}

csr() { # NAME CN
    key "$1"
    ssl "$1.csr" req -config "$cnf" -new -key "$tmp/$1.key" \
        -subj "$SUBJ_PREFIX/CN=$2" -out "$tmp/$1.csr"
}

sign() { # NAME CA EXT
    ssl "$1.crt" x509 -req -in "$tmp/$1.csr" -CA "$tmp/$2.crt" \
        -CAkey "$tmp/$2.key" -set_serial "0x$(openssl rand -hex 16)" \
        -days "$DAYS" -sha256 -extfile "$cnf" -extensions "$3" \
        -out "$tmp/$1.crt"
}

ca ca "fling test CA"
csr server localhost
sign server ca server_ext
csr client "fling test client"
sign client ca client_ext
csr node localhost
sign node ca node_ext

ca other-ca "fling other test CA"
csr other-client "fling other-CA client"
sign other-client other-ca client_ext

key self-signed
ssl self-signed.crt req -config "$cnf" -new -x509 -key "$tmp/self-signed.key" \
    -subj "$SUBJ_PREFIX/CN=fling self-signed client" -days "$DAYS" -sha256 \
    -extensions client_ext -out "$tmp/self-signed.crt"

csr expired "fling expired client"
if openssl x509 -help 2>&1 | grep -q -- -not_before; then
    ssl expired.crt x509 -req -in "$tmp/expired.csr" -CA "$tmp/ca.crt" \
        -CAkey "$tmp/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
        -not_before 20200101000000Z -not_after 20200131000000Z -sha256 \
        -extfile "$cnf" -extensions client_ext -out "$tmp/expired.crt"
else
    : >"$tmp/index.txt"
    openssl rand -hex 16 >"$tmp/serial"
    ssl expired.crt ca -config "$cnf" -batch -notext -in "$tmp/expired.csr" \
        -cert "$tmp/ca.crt" -keyfile "$tmp/ca.key" \
        -startdate 20200101000000Z -enddate 20200131000000Z \
        -extfile "$cnf" -extensions client_ext -out "$tmp/expired.crt"
fi

names="ca server client node other-ca other-client self-signed expired"
for n in $names; do
    chmod 0600 "$tmp/$n.key"
    chmod 0644 "$tmp/$n.crt"
done
for n in $names; do
    mv -f -- "$tmp/$n.key" "$out/$n.key"
    mv -f -- "$tmp/$n.crt" "$out/$n.crt"
    echo "wrote $out/$n.key"
    echo "wrote $out/$n.crt"
done
