#!/bin/sh
# make run: starts portshared with two demo apps sharing port 8080, prints what to try,
# and stops everything on Ctrl-C. Usage: sh scripts/demo.sh BUILD_DIR
set -u
build=$(cd "${1:-build}" && pwd)
port=${PORTSHARE_DEMO_PORT:-8080}
demo="$build/demo"
mkdir -p "$demo"
if [ "$(id -u)" -eq 0 ]; then
	sock=/run/portshare/control.sock
	state=/var/lib/portshare
else
	sock="$demo/control.sock"
	state="$demo/state"
fi
conf="$demo/portshared.conf"
# the demo listens on loopback only; an empty listen list would bind every address
printf '# written by make run\nlisten 127.0.0.1\nAccessLog %s/access.log\n' "$demo" >"$conf"

pids=""
stop() {
	trap - INT TERM EXIT
	for p in $pids; do kill "$p" 2>/dev/null; done
	for p in $pids; do wait "$p" 2>/dev/null; done
	echo
	echo "demo stopped"
	exit 0
}
trap stop INT TERM EXIT

"$build/bin/portshared" --socket "$sock" --state-dir "$state" --config "$conf" &
pids="$!"
i=0
while [ ! -S "$sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
if ! kill -0 "$pids" 2>/dev/null; then
	echo "portshared did not start (see the message above)" >&2
	exit 1
fi
export PORTSHARE_SOCKET="$sock"
"$build/bin/portshare-hello" --url "http://+:$port/" --queue site --text "site app" &
pids="$pids $!"
"$build/bin/portshare-hello" --url "http://+:$port/hello/" --queue hello --text "hello app" &
pids="$pids $!"
sleep 0.5
cat <<MSG

portshare is running: two separate processes share port $port by URL prefix.
Try, in another terminal:

  curl http://127.0.0.1:$port/             # answered by the "site" app
  curl http://127.0.0.1:$port/hello/world  # answered by the "hello" app
  curl http://127.0.0.1:$port/hello        # also "hello": /hello/ matches the bare segment
  curl http://127.0.0.1:$port/helloworld   # "site": prefixes match whole segments only
  PORTSHARE_SOCKET=$sock $build/bin/portsharectl status
  PORTSHARE_SOCKET=$sock $build/bin/portsharectl metrics
  tail -f $demo/access.log                 # one line per request, about a second later

Press Ctrl-C to stop everything.
MSG
wait
