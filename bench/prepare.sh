# bench/prepare.sh: sourced by run.sh and syscalls.sh: builds portshare if it is not
# built, snapshots the daemon, portsharectl, the proxy and the library into $RUN (a rebuild
# during a run then changes nothing) and compiles the bench worker and client against that
# snapshot; bench_cert makes the run's TLS certificate. BENCH_BUILD names the build
# directory to measure (default build).
BUILD_DIR=${BENCH_BUILD:-build}
bench_prepare() { # RUN
	if [ ! -x "$BUILD_DIR/bin/portshared" ] || [ ! -x "$BUILD_DIR/bin/portshare-proxy" ] ||
		[ ! -f "$BUILD_DIR/lib/libportshare.a" ]; then
		make -s BUILD="$BUILD_DIR"
	fi
	mkdir -p "$1/bin"
	cp "$BUILD_DIR/bin/portshared" "$BUILD_DIR/bin/portshare-proxy" "$1/bin/"
	cp "$BUILD_DIR/lib/libportshare.a" "$1/libportshare.a"
	CFLAGS="-std=c17 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror"
	cc $CFLAGS -Iinclude -o "$1/bin/worker" bench/worker.c "$1/libportshare.a" -lgnutls -lpthread
	cc $CFLAGS -o "$1/bin/client" bench/client.c
	cp "$BUILD_DIR/bin/portsharectl" "$1/bin/portsharectl"
	printf 'listen 127.0.0.1\n' > "$1/portshared.conf"
}

# An ECDSA P-256 certificate for 127.0.0.1 and localhost, made for this run only (never
# kept in the repository): RUN/tls/cert.pem and key.pem.
bench_cert() { # RUN
	mkdir -m 700 "$1/tls"
	certtool --generate-privkey --key-type=ecdsa --curve=secp256r1 --outfile "$1/tls/key.pem" 2>/dev/null
	printf 'cn = "localhost"\ndns_name = "localhost"\nip_address = "127.0.0.1"\nexpiration_days = 7\nsigning_key\ntls_www_server\n' \
		> "$1/tls/template"
	certtool --generate-self-signed --load-privkey "$1/tls/key.pem" --template "$1/tls/template" \
		--outfile "$1/tls/cert.pem" 2>/dev/null
}
