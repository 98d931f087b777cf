# bench/prepare.sh: sourced by run.sh and syscalls.sh: builds portshare if it is not
# built, snapshots the daemon, portsharectl and the library into $RUN (a rebuild during a
# run then changes nothing) and compiles the bench worker and client against that snapshot.
bench_prepare() { # RUN
	if [ ! -x build/bin/portshared ] || [ ! -f build/lib/libportshare.a ]; then
		make -s
	fi
	mkdir -p "$1/bin"
	cp build/bin/portshared "$1/bin/portshared"
	cp build/lib/libportshare.a "$1/libportshare.a"
	CFLAGS="-std=c17 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror"
	cc $CFLAGS -Iinclude -o "$1/bin/worker" bench/worker.c "$1/libportshare.a" -lgnutls -lpthread
	cc $CFLAGS -o "$1/bin/client" bench/client.c
	cp build/bin/portsharectl "$1/bin/portsharectl"
	printf 'listen 127.0.0.1\n' > "$1/portshared.conf"
}
