#!/usr/bin/env bash
# tests/image/test_image.sh BUILD_DIR: builds docker/Dockerfile for real with podman and runs it.
#
# Contract:
# - The base is made here, never pulled: `debootstrap --variant=minbase bookworm` from the Debian
#   mirror this machine's apt uses, with the same clean-up config and slimming as the official
#   image (debuerreotype-minimizing-config, debuerreotype-slimify), imported as
#   docker.io/library/debian:bookworm-slim, the name the Dockerfile's FROM resolves to. The tarball
#   is cached in BUILD_DIR/image-base/ (remove it to make a new one); nothing else is kept.
# - podman runs on a store of its own under a temporary directory (--root/--runroot/--tmpdir), so
#   it neither sees nor changes other podman containers or images on the machine (only podman's
#   shared blob-digest cache, /var/lib/containers/cache, records the layers it writes); on exit
#   (also on failure or a signal) its containers and images are removed and the directory deleted.
# - Needs root (debootstrap, rootful podman) and the tools `make deps` installs.
# - Checks, each printed as `ok` or `FAIL`: the build leaves only the base and the final image (no
#   build stage); the image holds no apt cache or lists, runs as uid 10001 with the binary as its
#   entrypoint; with --network host it serves HTTP/1.1 (curl) and h2c (curl with prior knowledge,
#   h2load), configured by a MOCKUPSTREAM_* variable and a flag after the image name; `podman
#   stop` while a /wait/2000 is held answers it (200, Connection: close) and the container exits 0.
# - Every step has a time limit; a failed step stops the run with its name and output. Ends with
#   `image-test: N passed, N failed` and exits 1 if anything failed.
#
# Machine facts it relies on: crun refuses the host's hybrid cgroups here, so runc is used; root
# cannot raise nofile above 20000 nor nproc above the host's, so the run sets both (see below).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${1:?usage: tests/image/test_image.sh BUILD_DIR}
mkdir -p "$BUILD_DIR"
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
SUITE=bookworm
BASE_NAME=docker.io/library/debian:bookworm-slim
# Bump the recipe number when the base recipe below changes, so a cached tarball is remade.
BASE_TAR=$BUILD_DIR/image-base/debian-$SUITE-slim-r1.tar
IMAGE=localhost/mockupstream-image-test:$$
CONTAINER=mockupstream-image-test-$$
BUILD_TIMEOUT_S=${IMAGE_BUILD_TIMEOUT_S:-1800}

passed=0
failed=0
started_s=$SECONDS

say() { printf 'image-test: %s\n' "$*"; }
ok() { passed=$((passed + 1)); say "ok   $*"; }
bad() { failed=$((failed + 1)); say "FAIL $*"; }
check() { # check DESCRIPTION COMMAND...: one named check, never stops the run
    local what=$1; shift
    if "$@"; then ok "$what"; else bad "$what"; fi
}
finish() {
    say "took $((SECONDS - started_s))s"
    printf 'image-test: %s passed, %s failed\n' "$passed" "$failed"
    [ "$failed" -eq 0 ]
}
die() { # a step the later checks depend on failed: stop here
    bad "$*"
    finish || true
    exit 1
}

# step NAME TIMEOUT_S COMMAND...: runs a command with a time limit, its output in a log that is
# shown only when it fails; prints how long it took.
step() {
    local name=$1 limit=$2; shift 2
    local log="$WORK/step.log" t0=$SECONDS rc=0
    timeout --kill-after=30 "$limit" "$@" >"$log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        tail -n 60 "$log" | sed 's/^/    /'
        if [ "$rc" -eq 124 ]; then die "$name: no result within ${limit}s"; fi
        die "$name: exit status $rc"
    fi
    say "$name: $((SECONDS - t0))s"
}

for tool in podman runc debootstrap debuerreotype-slimify curl h2load python3; do
    command -v "$tool" >/dev/null || { say "FAIL $tool is missing: run \`make deps\` (as root)"; exit 1; }
done
[ "$(id -u)" = 0 ] || { say "FAIL needs root (debootstrap, and podman's rootful store)"; exit 1; }

WORK=$(mktemp -d /var/tmp/mockupstream-image-test.XXXXXX)
PODMAN=(podman --root "$WORK/storage" --runroot "$WORK/run" --tmpdir "$WORK/tmp"
        --storage-driver overlay --runtime runc --cgroup-manager cgroupfs --events-backend file)
pm() { timeout --kill-after=10 "${PM_TIMEOUT_S:-60}" "${PODMAN[@]}" "$@"; }

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ -n "${curl_pid:-}" ] && kill "$curl_pid" 2>/dev/null
    if [ -d "$WORK/storage" ]; then
        pm rm --force --all --time 0 >/dev/null 2>&1 || true
        pm rmi --force --all >/dev/null 2>&1 || true
    fi
    # whatever podman left mounted in its store (if it was killed), deepest first
    awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r umount -l 2>/dev/null || true
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

# --- the base: debian:bookworm-slim as the official image is made, from this machine's mirror ----
make_base() {
    local rootfs=$WORK/rootfs targets mirror security
    # the URIs apt uses here for bookworm and bookworm-security (either sources.list format)
    # shellcheck disable=SC2016 # $(...) is apt's format syntax, not the shell's
    targets=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)')
    mirror=$(awk -v s=$SUITE '$2 == s { print $1; exit }' <<<"$targets")
    security=$(awk -v s=$SUITE-security '$2 == s { print $1; exit }' <<<"$targets")
    [ -n "$mirror" ] || die "no '$SUITE' source in apt's configuration (/etc/apt/sources.list*)"
    say "making the base from $mirror (cached afterwards in ${BASE_TAR#"$ROOT"/})"
    step "debootstrap --variant=minbase $SUITE" 900 debootstrap --variant=minbase --merged-usr "$SUITE" "$rootfs" "$mirror"
    # debuerreotype's scripts stamp files with this epoch (reproducible timestamps)
    date +%s >"$rootfs/debuerreotype-epoch"
    # docker-clean (apt keeps no .deb or cache), docker-gzip-indexes, docker-no-languages, policy-rc.d
    step "debuerreotype-minimizing-config" 60 debuerreotype-minimizing-config "$rootfs"
    # the official image's sources: the release, its updates and security, in deb822 form
    rm -f "$rootfs/etc/apt/sources.list"
    {
        printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "${mirror%/}" $SUITE $SUITE
        [ -z "$security" ] || printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "${security%/}" $SUITE
    } >"$rootfs/etc/apt/sources.list.d/debian.sources"
    step "apt-get update (base)" 300 debuerreotype-apt-get "$rootfs" update -qq
    step "apt-get dist-upgrade (base)" 600 debuerreotype-apt-get "$rootfs" dist-upgrade -yqq
    # the -slim variant: man pages, docs and locales excluded (and kept out by dpkg's config)
    step "debuerreotype-slimify" 300 debuerreotype-slimify "$rootfs"
    mkdir -p "$(dirname "$BASE_TAR")"
    # leaves out apt's lists and caches, /dev, /proc, /sys and the epoch file
    step "debuerreotype-tar" 300 debuerreotype-tar "$rootfs" "$BASE_TAR.tmp"
    mv "$BASE_TAR.tmp" "$BASE_TAR"
    rm -rf "$rootfs"
}

if [ -s "$BASE_TAR" ]; then
    say "base: cached ${BASE_TAR#"$ROOT"/} ($(($(stat -c %s "$BASE_TAR") / 1000000)) MB)"
else
    make_base
fi
# The official image's configuration: bash as the default command, the usual PATH.
step "podman import as $BASE_NAME" 300 "${PODMAN[@]}" import \
    --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$BASE_TAR" "$BASE_NAME"
base_id=$(pm image inspect --format '{{.Id}}' "$BASE_NAME") || die "podman image inspect $BASE_NAME"

# --- the build: docker/Dockerfile as it is, from the repository root -----------------------------
# --pull=never: FROM must resolve to the imported base, never a registry. --network host: the RUN
# steps reach the same mirror as the host, with no NAT set up. --layers=false: no cached layer
# images, so the build stage is not left behind as an image (checked below).
step "podman build docker/Dockerfile" "$BUILD_TIMEOUT_S" "${PODMAN[@]}" build --pull=never --network host \
    --layers=false --runtime runc --ulimit nofile=20000:20000 -f "$ROOT/docker/Dockerfile" -t "$IMAGE" "$ROOT"
image_id=$(pm image inspect --format '{{.Id}}' "$IMAGE") || die "podman image inspect $IMAGE"
size_bytes=$(pm image inspect --format '{{.Size}}' "$IMAGE") || die "podman image inspect $IMAGE"
base_bytes=$(pm image inspect --format '{{.Size}}' "$BASE_NAME") || die "podman image inspect $BASE_NAME"
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
say "image size: $(mb "$size_bytes") (base $(mb "$base_bytes"), added by the Dockerfile $(mb $((size_bytes - base_bytes))))"

# podman build with cached layers keeps the build stage (the compiler and -dev packages) as an image
store=$(pm images --all --no-trunc --format '{{.ID}} {{.Repository}}:{{.Tag}} {{.Size}}') || die "podman images"
others=$(grep -v -e "$image_id" -e "$base_id" <<<"$store" || true)
check "the store holds only the base and the image, no build stage ($(wc -l <<<"$store") images${others:+; also: $others})" \
    test -z "$others"

mnt=$(pm image mount "$IMAGE") || die "podman image mount $IMAGE"
apt_left=$(cd "$mnt" && find var/cache/apt var/lib/apt/lists -type f ! -name lock 2>/dev/null | head -5)
apt_kb=$(du -sk "$mnt/var/cache/apt" "$mnt/var/lib/apt/lists" | awk '{ s += $1 } END { print s }')
check "no apt cache or lists in the image (${apt_kb} kB in /var/cache/apt, /var/lib/apt/lists): ${apt_left:-none}" test -z "$apt_left"
check "the image holds the binary at the entrypoint's path" test -x "$mnt/usr/local/bin/mockupstream"
pm image unmount "$IMAGE" >/dev/null
config=$(pm image inspect --format '{{.Config.User}} {{json .Config.Entrypoint}} {{.Config.StopSignal}}' "$IMAGE")
check "image config is user 10001:10001, entrypoint the binary, SIGTERM to stop: $config" \
    test "$config" = '10001:10001 ["/usr/local/bin/mockupstream"] SIGTERM'

# --- running it: host network, loopback only --------------------------------------------------------
# nproc: podman runs itself with 32768 and would otherwise ask runc for 1048576, which this
# sandbox refuses even to root (as it refuses nofile above 20000).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
run_out=$(pm run --detach --name "$CONTAINER" --network host --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 \
    -e MOCKUPSTREAM_LISTEN="127.0.0.1:$port" "$IMAGE" --workers 2 --delay 5ms 2>&1) \
    || die "podman run: $run_out $(pm logs "$CONTAINER" 2>&1 | tail -20)"
up=0
for _ in $(seq 150); do # up to 30 s
    if [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url/healthz")" = 200 ]; then up=1; break; fi
    [ "$(pm inspect --format '{{.State.Running}}' "$CONTAINER")" = true ] || break
    sleep 0.2
done
[ "$up" = 1 ] || die "the container did not answer /healthz on $url within 30s: $(pm logs "$CONTAINER" 2>&1 | tail -20)"
ok "container answers /healthz on $url (--network host)"

http1=$(curl -sS -m 10 --http1.1 -w ' %{http_version} %{http_code}' "$url/anything")
check "HTTP/1.1 with curl: '${http1//$'\n'/\\n}'" test "$http1" = $'Hello world!\n 1.1 200'
h2c=$(curl -sS -m 10 --http2-prior-knowledge -w ' %{http_version} %{http_code}' "$url/anything")
check "h2c with curl --http2-prior-knowledge: '${h2c//$'\n'/\\n}'" test "$h2c" = $'Hello world!\n 2 200'
h2load_out=$(timeout 60 h2load -n 200 -c 2 -m 10 "$url/" 2>&1 || true)
check "h2c with h2load (200 requests, 10 streams per connection): $(grep -E '^requests:' <<<"$h2load_out")" \
    grep -qE '^requests: 200 total, 200 started, 200 done, 200 succeeded' <<<"$h2load_out"
stats=$(curl -sS -m 10 "$url/stats")
config_seen=$(python3 -c 'import json, sys; c = json.load(sys.stdin)["config"]; print(c["workers"], c["delay_seconds"])' <<<"$stats")
check "configured by the flags after the image name (workers, delay): $config_seen" test "$config_seen" = "2 0.005"
# huser: the uid on the host (no such user here); user: the name in the image's /etc/passwd
users=$(pm top "$CONTAINER" huser user | awk 'NR > 1 { print $1 "/" $2 }')
check "master and 2 workers run as uid 10001 (host uid/container user): $(sort <<<"$users" | uniq -c | xargs)" \
    test "$(sort -u <<<"$users")" = 10001/mockupstream -a "$(wc -l <<<"$users")" -eq 3

# --- podman stop while a request is held ------------------------------------------------------------
curl -sS -m 30 -D "$WORK/wait.headers" -o "$WORK/wait.body" -w '%{http_code} %{time_total}' \
    "$url/wait/2000" >"$WORK/wait.out" 2>&1 &
curl_pid=$!
held=0
for _ in $(seq 100); do # up to 10 s for the request to be held
    held=$(curl -sS -m 2 "$url/stats" | python3 -c 'import json, sys; print(json.load(sys.stdin)["held"]["now"])' 2>/dev/null || echo 0)
    [ "$held" -ge 1 ] && break
    sleep 0.1
done
[ "$held" -ge 1 ] || die "the /wait/2000 request was never held (stats held.now stayed 0)"
t0=$SECONDS
stop_out=$(PM_TIMEOUT_S=60 pm stop --time 15 "$CONTAINER" 2>&1) || die "podman stop: $stop_out"
stop_s=$((SECONDS - t0))
wait "$curl_pid" || true
curl_pid=
wait_result=$(cat "$WORK/wait.out")
check "the held /wait/2000 is answered during the stop: '$wait_result' (code, seconds)" \
    grep -qE '^200 (2|3)\.' "$WORK/wait.out"
check "with Connection: close" grep -qi '^connection: *close' "$WORK/wait.headers"
exit_code=$(pm inspect --format '{{.State.ExitCode}}' "$CONTAINER")
check "the container exits 0 after podman stop (${stop_s}s, within its 15s)" test "$exit_code" = 0
logs=$(pm logs "$CONTAINER" 2>&1)
check "its log says it drained" grep -q 'drained; exiting' <<<"$logs"
[ "$failed" -eq 0 ] || { say "container log:"; sed 's/^/    /' <<<"$logs" | tail -30; }

finish
