"""Proof that the Docker image and the deployment files would work, on a machine without a Docker
engine:
- docker/Dockerfile runs the same package lists (tools/install-debian-packages deps/...) and `make` as
  developers, and its runtime stage is non-root, exposes 8080 and stops with SIGTERM;
- deps/debian-build.txt is enough to compile and link the server (every header and library the
  compiler uses belongs to a package that list pulls in) and deps/debian-runtime.txt installs every
  library the built binary loads;
- the binary serves as `nobody`, configured only by MOCKUPSTREAM_* variables, even as PID 1 of its own
  PID namespace (as in a container, where the kernel drops signals PID 1 has no handler for), and
  `docker stop`'s SIGTERM makes it exit 0;
- compose.yml, prometheus.yml and kubernetes.yaml parse and name ports and paths a real server serves.
"""
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile

import yaml

import clients as c
from mockserver import BIN, SANITIZED, SLOWDOWN, free_port, run, wait_for_port
from testcase import ServerTestCase

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
DOCKER = os.path.join(ROOT, "docker")

# Packages the runtime stage need not install because every debian:bookworm-slim image already has
# them: libc6 (Essential's C library), libgcc-s1 (libc6 depends on it), libstdc++6 (apt is C++ and
# depends on it; jemalloc links it), zlib1g and libzstd1 (dpkg pre-depends on both to unpack .debs).
# debian:bookworm-slim is a debootstrap minbase: the Essential packages, apt, and their dependencies.
# test_base_image_packages_are_really_in_minbase checks each of these against that closure.
BASE_IMAGE = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g", "libzstd1"}


def read(path):
    with open(path) as f:
        return f.read()


def read_list(name):
    with open(os.path.join(ROOT, "deps", name)) as f:
        return {line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")}


def dockerfile_stages():
    """[(base image, stage name, [(INSTRUCTION, args)])], line continuations joined, comments dropped."""
    with open(os.path.join(DOCKER, "Dockerfile")) as f:
        text = re.sub(r"\\\n\s*", " ", f.read())
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            words = args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append((words[0], name, []))
        else:
            stages[-1][2].append((instruction, args.strip()))
    return stages


def dockerignore_patterns():
    """.dockerignore as regular expressions, with Docker's rules: patterns are relative to the
    context root, `*` and `?` stay within one path element, `**` spans any number of directories,
    and a pattern that matches a directory excludes everything under it."""
    patterns = []
    for line in read(os.path.join(ROOT, ".dockerignore")).splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        assert not line.startswith("!"), "exceptions are not modelled by this test"
        parts = []
        for part in os.path.normpath(line.lstrip("/")).split("/"):
            if part == "**":
                parts.append("(?:[^/]+/)*")
                continue
            rx = "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in part)
            parts.append(rx + "/")
        patterns.append(re.compile("".join(parts).rstrip("/")))
    return patterns


def dockerignored(path, patterns):
    """True if Docker would leave `path` (relative, '/'-separated) out of the build context."""
    elements = path.split("/")
    prefixes = ["/".join(elements[:i]) for i in range(1, len(elements) + 1)]
    return any(p.fullmatch(prefix) for p in patterns for prefix in prefixes)


def build_context():
    """Relative paths of the files `docker build .` would send from the repository root."""
    patterns = dockerignore_patterns()
    files = []
    for top, dirs, names in os.walk(ROOT):
        rel = os.path.relpath(top, ROOT)
        rel = "" if rel == "." else rel + "/"
        dirs[:] = [d for d in dirs if not dockerignored(rel + d, patterns)]
        files += [rel + n for n in names if not dockerignored(rel + n, patterns)]
    return sorted(files)


def installed_packages():
    """{package: (essential, [dependency alternatives lists])} for installed packages, plus provides."""
    out = run(["dpkg-query", "-W", "-f",
               "${Package}\t${Status}\t${Essential}\t${Pre-Depends}, ${Depends}\t${Provides}\n"]).stdout
    packages, provides = {}, {}
    for line in out.splitlines():
        name, status, essential, deps, provided = line.split("\t")
        if not status.endswith(" installed"):
            continue
        packages[name] = (essential == "yes", [d for d in deps.split(",") if d.strip()])
        for p in provided.split(","):
            if p.strip():
                provides.setdefault(p.split()[0], name)
    return packages, provides


def dependency_closure(roots):
    """Installed packages reachable from `roots` through Depends/Pre-Depends (first installed alternative)."""
    packages, provides = installed_packages()
    seen, todo = set(), [r for r in roots if r in packages]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for alternatives in packages[name][1]:
            for alt in alternatives.split("|"):
                dep = alt.split()[0].split(":")[0]
                dep = dep if dep in packages else provides.get(dep)
                if dep:
                    todo.append(dep)
                    break
    return seen


def minbase():
    """What debian:bookworm-slim holds (as far as this Debian 12 host can tell): Essential + apt, closed."""
    packages, _ = installed_packages()
    return dependency_closure([n for n, (essential, _) in packages.items() if essential] + ["apt"])


def owners(paths):
    """{path: package that installed it, or None}, with one dpkg -S call for all of them. Each path is
    tried as given and with symlinks resolved, under /usr/lib and /lib (usrmerge moved files)."""
    candidates = {}
    for path in paths:
        real = os.path.realpath(path)
        candidates[path] = [os.path.normpath(path), real, re.sub(r"^/usr/lib/", "/lib/", real), re.sub(r"^/lib/", "/usr/lib/", real)]
    found = {}
    out = run(["dpkg", "-S"] + sorted({c for cs in candidates.values() for c in cs})).stdout
    for line in out.splitlines():
        package, _, path = line.partition(": ")
        # "pkg:amd64: /path", "pkg1, pkg2: /dir" (shared directories are never files we ask about)
        found[path.strip()] = package.split(",")[0].split(":")[0].strip()
    return {path: next((found[c] for c in cs if c in found), None) for path, cs in candidates.items()}


def owner(path):
    return owners([path])[path]


class DockerfileTest(ServerTestCase):
    def test_build_stage_uses_the_shared_list_and_make(self):
        stages = dockerfile_stages()
        self.assertEqual(len(stages), 2, "multi-stage: build + runtime")
        (build_image, build_name, build), (runtime_image, _, runtime) = stages
        self.assertEqual((build_image, runtime_image), ("debian:bookworm-slim", "debian:bookworm-slim"))
        runs = [args for ins, args in build if ins == "RUN"]
        install = "sh tools/install-debian-packages deps/debian-build.txt"
        self.assertIn(install, runs)
        self.assertIn("make", runs)
        self.assertLess(runs.index(install), runs.index("make"))
        # the whole repository reaches the build stage before make runs
        copies = [i for i, (ins, args) in enumerate(build) if ins == "COPY" and args == ". ."]
        self.assertTrue(copies and copies[0] < build.index(("RUN", "make")))
        # runtime stage copies the binary `make` built out of the named build stage
        self.assertIn(("COPY", f"--from={build_name} /src/build/mockupstream /usr/local/bin/mockupstream"), runtime)
        self.assertIn(("WORKDIR", "/src"), build)

    def test_runtime_stage_installs_the_runtime_list_and_runs_unprivileged(self):
        _, _, runtime = dockerfile_stages()[1]
        copied = {args.split()[0]: args.split()[1] for ins, args in runtime if ins == "COPY" and "--from" not in args}
        self.assertIn("deps/debian-runtime.txt", copied)
        self.assertIn("tools/install-debian-packages", copied)
        run_line = " ".join(args for ins, args in runtime if ins == "RUN")
        self.assertIn(f"sh {copied['tools/install-debian-packages']} {copied['deps/debian-runtime.txt']}", run_line)
        self.assertIn("rm -rf /var/lib/apt/lists/*", run_line)
        # no package names in the Dockerfile: deps/ holds the one copy of each list
        text = read(os.path.join(DOCKER, "Dockerfile"))
        text = re.sub(r"deps/debian-\w+\.txt", "", text)
        for package in read_list("debian-build.txt") | read_list("debian-runtime.txt"):
            self.assertNotRegex(text, r"(?<![\w/.-])" + re.escape(package) + r"(?![\w.-])", package)
        # a system user with a fixed numeric uid, and USER naming that uid (Kubernetes' runAsNonRoot
        # refuses to start an image whose USER is a name: it cannot check it is not root)
        useradd = re.search(r"useradd\b([^&;]*)", run_line)
        self.assertIsNotNone(useradd, "useradd in the runtime stage")
        self.assertIn("--system", useradd.group(1))
        uid = re.search(r"--uid[ =](\d+)", useradd.group(1))
        self.assertIsNotNone(uid, "useradd --uid N")
        user = [args for ins, args in runtime if ins == "USER"]
        self.assertEqual(len(user), 1)
        self.assertEqual(user[0].split(":")[0], uid.group(1))
        self.assertNotEqual(int(uid.group(1)), 0)
        # USER comes after every RUN: nothing after it needs root
        self.assertGreater(runtime.index(("USER", user[0])), max(i for i, (ins, _) in enumerate(runtime) if ins == "RUN"))
        self.assertIn(("EXPOSE", "8080"), runtime)
        self.assertIn(("STOPSIGNAL", "SIGTERM"), runtime)
        entry = [args for ins, args in runtime if ins == "ENTRYPOINT"]
        self.assertEqual(len(entry), 1)
        self.assertTrue(entry[0].startswith("["), "ENTRYPOINT in exec form, not through /bin/sh -c")
        # exec form (a JSON array): the server is PID 1 and receives docker stop's SIGTERM itself
        self.assertEqual(json.loads(entry[0]), ["/usr/local/bin/mockupstream"])
        self.assertFalse([args for ins, args in runtime if ins == "CMD" and not args.startswith("[")])
        # useradd comes from passwd, which the slim image has (it is in the Essential+apt closure)
        self.assertIn(owner("/usr/sbin/useradd"), minbase())

    def test_dockerignore_keeps_build_output_and_git_out(self):
        context = build_context()
        self.assertIn("Makefile", context)
        self.assertIn("server/main.c", context)
        for path in context:
            self.assertFalse(path.startswith(("build/", ".git/")), path)
            self.assertNotIn("__pycache__/", path)
        # junk deep in the tree is left out as well as at the top, and sources are kept
        patterns = dockerignore_patterns()
        for junk in ("tests/integration/__pycache__/x.cpython-311.pyc", "tools/x.pyc", "tests/x.log", "build"):
            self.assertTrue(dockerignored(junk, patterns), junk)
        for source in ("server/main.c", "tools/holdconns.c", "deps/debian-build.txt", "Makefile", "builder.c"):
            self.assertFalse(dockerignored(source, patterns), source)

    def test_build_context_builds_with_make(self):
        # What `COPY . .` + `RUN make` do in the build stage, minus the package installation (this
        # host has deps/debian-build.txt installed): the context alone must build, with no build/.
        if SANITIZED:
            self.skipTest("builds the release binary; once is enough")
        ctx = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, ctx)
        for path in build_context():
            os.makedirs(os.path.join(ctx, os.path.dirname(path)), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, path), os.path.join(ctx, path))
        self.assertFalse(os.path.exists(os.path.join(ctx, "build")))
        made = run(["make"], cwd=ctx, timeout_s=300)
        self.assertEqual(made.returncode, 0, made.stdout + made.stderr)
        # the path the runtime stage copies from, and a binary that starts
        binary = os.path.join(ctx, "build/mockupstream")
        copy = next(args for ins, args in dockerfile_stages()[1][2] if ins == "COPY" and args.startswith("--from="))
        self.assertEqual(copy.split()[1], "/src/build/mockupstream")
        version = run([binary, "--version"])
        self.assertEqual(version.returncode, 0, version.stderr)
        self.assertIn("mockupstream", version.stdout + version.stderr)

    def test_base_image_packages_are_really_in_minbase(self):
        base = minbase()
        self.assertIn("apt", base)
        self.assertIn("dpkg", base)
        self.assertEqual(BASE_IMAGE - base, set())

    def test_runtime_list_installs_every_linked_library(self):
        if SANITIZED:
            self.skipTest("the image ships the release build")
        runtime = read_list("debian-runtime.txt")
        libraries = re.findall(r"=> (/\S+)", run(["ldd", BIN]).stdout)
        self.assertGreater(len(libraries), 3)
        needed = {}
        for lib, package in owners(libraries).items():
            self.assertIsNotNone(package, f"no package owns {lib}")
            needed[package] = lib
        missing = set(needed) - BASE_IMAGE - runtime
        self.assertEqual(missing, set(), f"add to deps/debian-runtime.txt: {sorted(missing)}")
        self.assertTrue({"libh2o-evloop0.13", "libev4", "libjemalloc2", "libssl3"} <= set(needed), needed)
        # every listed name is a real Debian 12 package (installed here), not a typo apt would reject
        self.assertEqual({p for p in runtime if owner_missing(p)}, set())

    def test_build_list_is_enough_to_compile_and_link(self):
        if SANITIZED:
            self.skipTest("checks the Makefile's release command, independent of the binary under test")
        # The exact compile command `make` runs in the build stage, turned into "list the headers".
        dry = run(["make", "-n", "-B", "-C", ROOT, "build/mockupstream"])
        self.assertEqual(dry.returncode, 0, dry.stderr)
        cc_line = next(l for l in dry.stdout.splitlines() if " -o build/mockupstream " in l)
        argv = shlex.split(cc_line)
        i = argv.index("-o")
        del argv[i:i + 2]
        libs = [a[2:] for a in argv if a.startswith("-l")]
        deps = run([a for a in argv if not a.startswith("-l")] + ["-M"], cwd=ROOT)
        self.assertEqual(deps.returncode, 0, deps.stderr)
        headers = {p for p in deps.stdout.replace("\\\n", " ").split() if p.endswith(".h") and p.startswith("/")}
        self.assertGreater(len(headers), 20)
        files = set(headers)
        for lib in libs:
            # glibc 2.34+ keeps only an empty libpthread.a: look for the shared object, then the archive
            path = next((p for p in (run([argv[0], f"-print-file-name=lib{lib}{ext}"]).stdout.strip()
                                     for ext in (".so", ".a")) if os.path.isabs(p)), None)
            self.assertIsNotNone(path, f"-l{lib} not found")
            files.add(path)
        available = dependency_closure(read_list("debian-build.txt")) | minbase()
        missing = {}
        for path, package in owners(files).items():
            self.assertIsNotNone(package, f"no package owns {path}")
            if package not in available:
                missing[package] = path
        self.assertEqual(missing, {}, "add to deps/debian-build.txt (package: a file the build uses)")
        self.assertTrue({"libh2o-evloop-dev", "libev-dev", "libssl-dev", "libjemalloc-dev"} <= available)
        self.assertIn("make", available)


def owner_missing(package):
    return run(["dpkg-query", "-W", "-f", "${Status}", package]).stdout.split()[-1:] != ["installed"]


class ContainerLikeRunTest(ServerTestCase):
    def start_as_nobody(self, container):
        """The binary, copied where `nobody` can read it, started like the image's ENTRYPOINT would be:
        as an unprivileged user with only MOCKUPSTREAM_* in the environment. With `container`, also
        as PID 1 of a new PID namespace in a new network namespace, with no listen address configured:
        the default (0.0.0.0:8080) must be the port the Dockerfile EXPOSEs. Returns
        (process, master pid, get(path) -> (status, body), output())."""
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        binary = os.path.join(tmp, "mockupstream")
        shutil.copy(BIN, binary)
        os.chmod(tmp, 0o755)
        os.chmod(binary, 0o755)
        env = {"MOCKUPSTREAM_DELAY": "5ms", "MOCKUPSTREAM_WORKERS": "2"}
        if container:
            # the port comes from the image, not from the test: a namespace of its own has 8080 free
            port = int(next(args for ins, args in dockerfile_stages()[1][2] if ins == "EXPOSE"))
        else:
            port = free_port()
            env["MOCKUPSTREAM_LISTEN"] = f"127.0.0.1:{port}"
        if SANITIZED:
            env["ASAN_OPTIONS"] = "detect_leaks=1:exitcode=99"
        cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "env", "-i"] + \
              [f"{k}={v}" for k, v in env.items()] + [binary]
        if container:
            cmd = ["unshare", "--pid", "--net", "--fork", "--kill-child"] + cmd
        log = tempfile.TemporaryFile()
        self.addCleanup(log.close)
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

        def cleanup():
            # TERM was the test's job; anything still alive here is killed with its whole group
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.addCleanup(cleanup)

        def output():
            log.seek(0)
            return log.read().decode(errors="replace")

        if not container:
            def get(path):
                status, _, body = c.fetch(f"http://127.0.0.1:{port}{path}")
                return status, body
            self.assertTrue(wait_for_port("127.0.0.1", port), output())
            return proc, proc.pid, get, output

        # unshare(1) is in the new network namespace itself; a fresh namespace's loopback is down
        # (the server's 0.0.0.0 bind does not need it, the test's connections do)
        netns = ["nsenter", f"--net=/proc/{proc.pid}/ns/net"]
        self.assertTrue(c.wait_until(lambda: os.readlink(f"/proc/{proc.pid}/ns/net") != os.readlink("/proc/self/ns/net")))
        self.assertEqual(run(netns + ["ip", "link", "set", "lo", "up"]).returncode, 0)

        def get(path):
            r = run(netns + ["curl", "-s", "--max-time", str(10 * SLOWDOWN), "-w", "\n%{http_code}",
                             f"http://127.0.0.1:{port}{path}"])
            body, _, code = r.stdout.rpartition("\n")
            return (int(code) if code.isdigit() else 0), body.encode()
        self.assertTrue(c.wait_until(lambda: get("/healthz")[0] == 200, timeout_s=10), output())
        self.assertTrue(c.wait_until(lambda: c.children(proc.pid)), output())
        master = c.children(proc.pid)[0]
        # really PID 1 inside its namespace
        nspid = read(f"/proc/{master}/status").split("NSpid:")[1].splitlines()[0].split()
        self.assertEqual(nspid[-1], "1")
        # and not reachable from the host's network namespace (it is the container's own 8080)
        self.assertEqual(os.readlink(f"/proc/{master}/ns/net"), os.readlink(f"/proc/{proc.pid}/ns/net"))
        return proc, master, get, output

    def check_serves_and_stops(self, container):
        proc, master, get, output = self.start_as_nobody(container)
        self.assertEqual(get("/healthz"), (200, b"ok\n"))
        self.assertEqual(get("/anything"), (200, b"Hello world!\n"))
        status, body = get("/stats")
        self.assertEqual(status, 200)
        doc = json.loads(body)
        # the configuration came from the environment alone
        self.assertEqual(doc["config"]["workers"], 2)
        self.assertAlmostEqual(doc["config"]["delay_seconds"], 0.005)
        self.assertEqual(doc["requests"]["total"], 1)
        status = read(f"/proc/{master}/status")
        self.assertNotEqual(int(status.split("Uid:")[1].split()[0]), 0)
        self.assertEqual(len(c.children(master)), 2)
        os.kill(master, signal.SIGTERM)  # what `docker stop` does (STOPSIGNAL SIGTERM)
        try:
            code = proc.wait(timeout=10 * SLOWDOWN)
        except subprocess.TimeoutExpired:
            self.fail("SIGTERM did not stop the server\n" + output())
        self.assertEqual(code, 0, output())
        self.assertIn("mockupstream", output().splitlines()[0])  # logs reach the container's stderr

    def test_runs_as_nobody_configured_only_by_environment(self):
        self.check_serves_and_stops(container=False)

    def test_runs_as_pid1_on_the_default_port_and_stops_on_sigterm(self):
        # In a container the entrypoint is PID 1: the kernel delivers SIGTERM to it only because the
        # server installs a handler, and it must reap its own workers (there is no init to do so).
        # Nothing sets --listen in the image, so the default must listen on the EXPOSEd port.
        if os.geteuid() != 0:
            self.skipTest("needs root for PID and network namespaces")
        self.check_serves_and_stops(container=True)


class DeploymentFilesTest(ServerTestCase):
    def load(self):
        compose = yaml.safe_load(read(os.path.join(DOCKER, "compose.yml")))
        prometheus = yaml.safe_load(read(os.path.join(DOCKER, "prometheus.yml")))
        k8s = list(yaml.safe_load_all(read(os.path.join(DOCKER, "kubernetes.yaml"))))
        return compose, prometheus, k8s

    def test_compose_and_prometheus(self):
        compose, prometheus, _ = self.load()
        service = compose["services"]["mockupstream"]
        self.assertEqual(service["network_mode"], "host")
        self.assertEqual(service["ulimits"]["nofile"], {"soft": 1048576, "hard": 1048576})
        self.assertEqual(service["build"]["dockerfile"], "docker/Dockerfile")
        # build context is the repository root (compose paths are relative to docker/)
        self.assertEqual(os.path.realpath(os.path.join(DOCKER, service["build"]["context"])), ROOT)
        self.assertEqual(service["environment"]["MOCKUPSTREAM_DELAY"], "10ms")
        for name in service["environment"]:
            self.assertTrue(name.startswith("MOCKUPSTREAM_"), name)
        self.assertTrue(compose["services"]["prometheus"]["image"].startswith("prom/prometheus"))
        mounts = compose["services"]["prometheus"]["volumes"]
        self.assertTrue(any(m.startswith("./prometheus.yml:") for m in mounts), mounts)
        self.assertEqual(prometheus["global"]["scrape_interval"], "5s")
        job = prometheus["scrape_configs"][0]
        self.assertEqual(job["metrics_path"], "/metrics")
        # Prometheus scrapes the stats listener, not the benchmark port
        stats_host, _, stats_port = service["environment"]["MOCKUPSTREAM_STATS_LISTEN"].rpartition(":")
        self.assertEqual(job["static_configs"][0]["targets"], [f"localhost:{stats_port}"])
        # with host networking the server's port is the host's: the one EXPOSEd
        host, _, port = service["environment"]["MOCKUPSTREAM_LISTEN"].rpartition(":")
        self.assertEqual((host, port), ("0.0.0.0", "8080"))
        self.assertNotEqual(stats_port, port)
        self.assertIn(("EXPOSE", port), dockerfile_stages()[1][2])
        # a server with compose's environment (free ports in place of 8080/8081) answers the scrape
        env = dict(service["environment"])
        free, free_stats = free_port(), free_port()
        env["MOCKUPSTREAM_LISTEN"] = f"127.0.0.1:{free}"
        env["MOCKUPSTREAM_STATS_LISTEN"] = f"127.0.0.1:{free_stats}"
        srv = self.server(env=env, listen=False, port=free)
        self.assertTrue(wait_for_port("127.0.0.1", free_stats), srv.output())
        status, headers, body = c.fetch(f"http://127.0.0.1:{free_stats}" + job["metrics_path"])
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain"), headers["Content-Type"])
        self.assertIn("# TYPE ", body.decode())

    def test_kubernetes(self):
        _, _, k8s = self.load()
        deployment = next(d for d in k8s if d["kind"] == "Deployment")
        service = next(d for d in k8s if d["kind"] == "Service")
        self.assertEqual(deployment["spec"]["replicas"], 2)
        pod = deployment["spec"]["template"]
        self.assertEqual(deployment["spec"]["selector"]["matchLabels"].items() - pod["metadata"]["labels"].items(), set())
        self.assertEqual(service["spec"]["selector"].items() - pod["metadata"]["labels"].items(), set())
        container = pod["spec"]["containers"][0]
        self.assertEqual(container["ports"][0]["containerPort"], 8080)
        self.assertEqual(service["spec"]["ports"][0]["port"], 8080)
        self.assertEqual(service["spec"]["ports"][0]["targetPort"], 8080)
        self.assertIs(container["securityContext"]["runAsNonRoot"], True)
        # probes and scrapes go to the stats listener, never the benchmark port
        env = {e["name"]: e["value"] for e in container["env"]}
        stats_port = int(env["MOCKUPSTREAM_STATS_LISTEN"].rpartition(":")[2])
        self.assertNotEqual(stats_port, 8080)
        self.assertIn(stats_port, [p["containerPort"] for p in container["ports"]])
        for probe in ("readinessProbe", "livenessProbe"):
            self.assertEqual(container[probe]["httpGet"], {"path": "/healthz", "port": stats_port})
        for key in ("requests", "limits"):
            self.assertIn("cpu", container["resources"][key])
            self.assertIn("memory", container["resources"][key])
        annotations = pod["metadata"]["annotations"]
        self.assertEqual((annotations["prometheus.io/scrape"], annotations["prometheus.io/port"],
                          annotations["prometheus.io/path"]), ("true", str(stats_port), "/metrics"))
        for name in env:
            self.assertTrue(name.startswith("MOCKUPSTREAM_"), name)
        # kubelet kills after the grace period: it must outlast the server's drain (default 5s)
        drain = float(env.get("MOCKUPSTREAM_DRAIN_TIMEOUT", "5s").rstrip("s"))
        self.assertGreater(pod["spec"]["terminationGracePeriodSeconds"], drain)
        # the workers setting matches the whole CPUs the pod gets
        if "MOCKUPSTREAM_WORKERS" in env:
            self.assertEqual(float(env["MOCKUPSTREAM_WORKERS"]), float(container["resources"]["limits"]["cpu"]))

    def test_named_paths_are_served_at_once_and_are_not_traffic(self):
        compose, prometheus, k8s = self.load()
        deployment = next(d for d in k8s if d["kind"] == "Deployment")
        pod = deployment["spec"]["template"]
        container = pod["spec"]["containers"][0]
        paths = {container["readinessProbe"]["httpGet"]["path"], container["livenessProbe"]["httpGet"]["path"],
                 pod["metadata"]["annotations"]["prometheus.io/path"], prometheus["scrape_configs"][0]["metrics_path"]}
        self.assertEqual(paths, {"/healthz", "/metrics"})
        # a server configured by the Kubernetes env (workers left to the test), with a long delay so a
        # delayed answer would show
        env = {e["name"]: e["value"] for e in container["env"] if e["name"] != "MOCKUPSTREAM_WORKERS"}
        env["MOCKUPSTREAM_DELAY"] = "2s"
        stats_port = free_port()
        env["MOCKUPSTREAM_STATS_LISTEN"] = f"127.0.0.1:{stats_port}"
        srv = self.server(env=env)
        self.assertTrue(wait_for_port("127.0.0.1", stats_port), srv.output())
        for path in sorted(paths):
            status, _, body = c.fetch(f"http://127.0.0.1:{stats_port}" + path, timeout_s=1.5)
            self.assertEqual(status, 200, path)
            if path == "/metrics":
                self.assertIn(b"# TYPE", body)
            else:
                self.assertEqual(body, b"ok\n")
        self.assertEqual(c.stats(srv)["requests"]["total"], 0)  # probes and scrapes are not traffic
