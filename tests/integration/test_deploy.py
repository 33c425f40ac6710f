"""Proof that the Docker image and deployment files would work, on a machine without a Docker engine:
the Dockerfile runs the same make targets and package lists as developers, the runtime stage installs
every library the binary links, the binary serves as a non-root user configured only by environment,
and the compose/Prometheus/Kubernetes files name paths and ports the server really serves."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import urllib.request

import yaml

import httpclient as hc
from mockserver import BIN, SLOWDOWN, free_port, run, wait_for_port
from testcase import ServerTestCase

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
DOCKER = os.path.join(ROOT, "docker")


def read_list(name):
    with open(os.path.join(ROOT, "deps", name)) as f:
        return {line.strip() for line in f if line.strip() and not line.startswith("#")}


def dockerfile_stages():
    """[(base image, [(INSTRUCTION, args)])] with line continuations joined and comments dropped."""
    with open(os.path.join(DOCKER, "Dockerfile")) as f:
        text = re.sub(r"\\\n\s*", " ", f.read())
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append((args.split()[0], []))
        else:
            stages[-1][1].append((instruction.upper(), args.strip()))
    return stages


class DockerfileTest(ServerTestCase):
    def test_build_stage_uses_the_shared_lists_and_make(self):
        stages = dockerfile_stages()
        self.assertEqual(len(stages), 2)
        (build_image, build), (runtime_image, runtime) = stages
        self.assertEqual((build_image, runtime_image), ("debian:bookworm-slim", "debian:bookworm-slim"))
        build_runs = [args for ins, args in build if ins == "RUN"]
        self.assertIn("sh tools/install-debian-packages deps/debian-build.txt", build_runs)
        self.assertIn("make", build_runs)
        runtime_runs = " ".join(args for ins, args in runtime if ins == "RUN")
        self.assertIn("install-debian-packages /tmp/debian-runtime.txt", runtime_runs)
        self.assertIn("COPY deps/debian-runtime.txt /tmp/debian-runtime.txt", [f"{i} {a}" for i, a in runtime])
        # no package names written into the Dockerfile itself: one list, in deps/
        text = open(os.path.join(DOCKER, "Dockerfile")).read()
        for package in read_list("debian-build.txt") | read_list("debian-runtime.txt"):
            self.assertNotIn(package, re.sub(r"deps/debian-\w+\.txt", "", text), package)
        user = [a for i, a in runtime if i == "USER"]
        self.assertTrue(user and user[-1] not in ("root", "0"))
        self.assertIn(("EXPOSE", "8080"), runtime)
        self.assertIn(("STOPSIGNAL", "SIGTERM"), runtime)
        entry = [a for i, a in runtime if i == "ENTRYPOINT"]
        self.assertEqual(entry, ['["/usr/local/bin/mockupstream"]'])
        self.assertIn("COPY --from=build /src/build/mockupstream /usr/local/bin/mockupstream", [f"{i} {a}" for i, a in runtime])
        ignore = open(os.path.join(ROOT, ".dockerignore")).read().split()
        self.assertIn("build/", ignore)
        self.assertIn(".git/", ignore)

    def test_runtime_list_installs_every_linked_library(self):
        if os.environ.get("MOCKUPSTREAM_SANITIZED") == "1":
            self.skipTest("the image ships the release build")
        # Present in every debian:bookworm-slim image (Essential or required by apt itself).
        base_image = {"libc6", "libgcc-s1", "libzstd1", "zlib1g", "libstdc++6"}
        runtime = read_list("debian-runtime.txt")
        libraries = re.findall(r"=> (/\S+)", run(["ldd", BIN]).stdout)
        self.assertGreater(len(libraries), 3)
        needed = set()
        for lib in libraries:
            owner = run(["dpkg", "-S", os.path.realpath(lib)])
            if owner.returncode != 0:
                owner = run(["dpkg", "-S", lib])
            self.assertEqual(owner.returncode, 0, f"no package owns {lib}")
            needed.add(owner.stdout.split(":")[0])
        missing = needed - base_image - runtime
        self.assertEqual(missing, set(), f"add to deps/debian-runtime.txt: {sorted(missing)}")
        self.assertTrue({"libh2o-evloop0.13", "libev4", "libjemalloc2", "libssl3"} <= needed)


class ContainerLikeRunTest(ServerTestCase):
    def test_runs_as_nobody_configured_only_by_environment(self):
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        binary = os.path.join(tmp, "mockupstream")
        shutil.copy(BIN, binary)
        os.chmod(tmp, 0o755)
        port = free_port()
        env = {"MOCKUPSTREAM_LISTEN": f"127.0.0.1:{port}", "MOCKUPSTREAM_DELAY": "5ms", "MOCKUPSTREAM_WORKERS": "2"}
        if os.environ.get("MOCKUPSTREAM_SANITIZED") == "1":
            env["ASAN_OPTIONS"] = "detect_leaks=1:exitcode=99"
        cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "env", "-i"] + \
              [f"{k}={v}" for k, v in env.items()] + [binary]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self.assertTrue(wait_for_port("127.0.0.1", port), proc.stdout.read1().decode() if proc.poll() else "")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as r:
                self.assertEqual(r.read(), b"ok\n")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/hello") as r:
                self.assertEqual((r.status, r.read()), (200, b"Hello world!\n"))
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats") as r:
                doc = __import__("json").loads(r.read())
            self.assertEqual(doc["config"]["workers"], 2)
            self.assertAlmostEqual(doc["config"]["delay_seconds"], 0.005)
            uid = int(open(f"/proc/{proc.pid}/status").read().split("Uid:")[1].split()[0])
            self.assertNotEqual(uid, 0)
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=10 * SLOWDOWN), 0)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


class DeploymentFilesTest(ServerTestCase):
    def test_yaml_names_real_ports_and_paths(self):
        compose = yaml.safe_load(open(os.path.join(DOCKER, "compose.yml")))
        prometheus = yaml.safe_load(open(os.path.join(DOCKER, "prometheus.yml")))
        k8s = list(yaml.safe_load_all(open(os.path.join(DOCKER, "kubernetes.yaml"))))

        service = compose["services"]["mockupstream"]
        self.assertEqual(service["network_mode"], "host")
        self.assertEqual(service["ulimits"]["nofile"]["hard"], 1048576)
        self.assertEqual(service["build"]["dockerfile"], "docker/Dockerfile")
        self.assertTrue(service["environment"]["MOCKUPSTREAM_LISTEN"].endswith(":8080"))
        job = prometheus["scrape_configs"][0]
        self.assertEqual(job["static_configs"][0]["targets"], ["localhost:8080"])
        scrape_path = job["metrics_path"]

        deployment = next(d for d in k8s if d["kind"] == "Deployment")
        k8s_service = next(d for d in k8s if d["kind"] == "Service")
        pod = deployment["spec"]["template"]
        container = pod["spec"]["containers"][0]
        self.assertEqual(container["ports"][0]["containerPort"], 8080)
        self.assertEqual(k8s_service["spec"]["ports"][0]["targetPort"], 8080)
        probe_paths = {container["readinessProbe"]["httpGet"]["path"], container["livenessProbe"]["httpGet"]["path"]}
        self.assertEqual({container["readinessProbe"]["httpGet"]["port"], container["livenessProbe"]["httpGet"]["port"]}, {8080})
        annotations = pod["metadata"]["annotations"]
        self.assertEqual(annotations["prometheus.io/port"], "8080")
        drain = next(e["value"] for e in container["env"] if e["name"] == "MOCKUPSTREAM_DRAIN_TIMEOUT")
        self.assertGreater(pod["spec"]["terminationGracePeriodSeconds"], float(drain.rstrip("s")))
        for env in container["env"]:
            self.assertTrue(env["name"].startswith("MOCKUPSTREAM_"))

        # the paths the files name exist on a real server, answered at once
        srv = self.server(*[arg for e in container["env"] if e["name"] != "MOCKUPSTREAM_WORKERS"
                            for arg in ("--" + e["name"][len("MOCKUPSTREAM_"):].lower().replace("_", "-"), e["value"])])
        for path in probe_paths | {scrape_path, annotations["prometheus.io/path"]}:
            with urllib.request.urlopen(srv.url + path, timeout=5) as r:
                self.assertEqual(r.status, 200, path)
        self.assertEqual(hc.stats(srv)["requests"]["total"], 0)  # probes and scrapes are not traffic


class TuneHostTest(ServerTestCase):
    TOOL = os.path.join(ROOT, "tools/tune-host")
    NAMES = ["fs.file-max", "fs.nr_open", "net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog",
             "net.core.netdev_max_backlog", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_tw_reuse", "nofile"]

    def test_shows_every_value_and_changes_nothing(self):
        before = {n: run(["sysctl", "-n", n]).stdout for n in self.NAMES if n != "nofile"}
        for args in ([], ["--client"]):
            r = run([self.TOOL] + args)
            self.assertEqual(r.returncode, 0, r.stderr)
            for name in self.NAMES:
                line = next((l for l in r.stdout.splitlines() if l.startswith(name)), None)
                self.assertIsNotNone(line, name)
                self.assertRegex(line, r"\b(OK|CHANGE)\b")
        self.assertEqual(before, {n: run(["sysctl", "-n", n]).stdout for n in before})

    def test_apply_needs_root_and_bad_options_are_refused(self):
        r = run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", self.TOOL, "--apply"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("needs root", r.stderr)
        r = run([self.TOOL, "--bogus"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("--bogus", r.stderr)
