# bench/prepare.sh: sourced by run.sh and syscalls.sh: builds portshare if it is not
# built, snapshots the daemon, the proxy and the library into $RUN (a rebuild during a run
# then changes nothing) and compiles the bench worker and client against that snapshot.
# BENCH_BUILD names the build directory to measure (default build).
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
	printf 'listen 127.0.0.1\n' > "$1/portshared.conf"
}
