"""Consistency checks between the manifests, the container config and the images, and the
negative cases that prove each validator can fail. Run by deploy/check."""

from __future__ import annotations

import copy
import pathlib
import subprocess
import sys
import tempfile

import yaml

DEPLOY = pathlib.Path(__file__).resolve().parent
K8S = DEPLOY / "k8s"
BIN = pathlib.Path(sys.executable).parent
KUBERNETES_VERSION = "1.31.0"


def documents(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def fail(message: str) -> None:
    print(f"deploy/check: {message}", file=sys.stderr)
    sys.exit(1)


def consistency() -> list[str]:
    """Facts the manifests must agree on; returns the probe health names for the live check."""
    config = documents("configmap.yaml")[0]["data"]["terse.toml"]
    if config != (DEPLOY / "terse.toml").read_text():
        fail("k8s/configmap.yaml's terse.toml differs from deploy/terse.toml")
    deployment = documents("deployment.yaml")[0]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    if 'listen = "0.0.0.0:%d"' % ports["grpc"] not in config:
        fail("the grpc containerPort is not the configured listen port")
    if 'metrics_listen = "0.0.0.0:%d"' % ports["metrics"] not in config:
        fail("the metrics containerPort is not the configured metrics port")
    grace_ms = next(
        int(line.split("=")[1]) for line in config.splitlines() if line.startswith("shutdown_grace_ms")
    )
    if grace_ms / 1000 >= pod["terminationGracePeriodSeconds"]:
        fail("shutdown_grace_ms must end before terminationGracePeriodSeconds")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for name in ("service.yaml", "pdb.yaml"):
        for doc in documents(name):
            selector = doc["spec"]["selector"]
            selector = selector.get("matchLabels", selector)
            if any(labels.get(k) != v for k, v in selector.items()):
                fail(f"{name}: selector {selector} does not match the pod labels {labels}")
    for doc in documents("service.yaml"):
        for port in doc["spec"]["ports"]:
            if port["targetPort"] not in ports:
                fail(f"service.yaml: targetPort {port['targetPort']} is not a container port")
    monitor = documents("servicemonitor.yaml")[0]
    service_ports = {p["name"] for d in documents("service.yaml") for p in d["spec"]["ports"]}
    if monitor["spec"]["endpoints"][0]["port"] not in service_ports:
        fail("servicemonitor.yaml scrapes a port no Service names")
    hpa = documents("hpa.yaml")[0]
    if hpa["spec"]["scaleTargetRef"]["name"] != deployment["metadata"]["name"]:
        fail("hpa.yaml targets another Deployment")
    names = []
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        grpc = container[probe]["grpc"]
        if grpc["port"] != ports["grpc"]:
            fail(f"{probe} probes port {grpc['port']}")
        names.append(grpc.get("service", ""))
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        if not (K8S / resource).is_file():
            fail(f"kustomization.yaml lists missing {resource}")
    return sorted(set(names))


def must_fail(what: str, command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode == 0:
        fail(f"the validator accepted a broken manifest ({what}): {' '.join(command)}")
    print(f"  refused as it should: {what}")


def negative_cases() -> None:
    """Each validator, given a broken copy, must fail."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)

        def write(name: str, docs: list[dict]) -> str:
            path = tmp / name
            path.write_text(yaml.safe_dump_all(docs))
            return str(path)

        validate = [str(BIN / "kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, "--quiet"]
        deployment = documents("deployment.yaml")[0]
        typo = copy.deepcopy(deployment)
        typo["spec"]["replica"] = typo["spec"].pop("replicas")
        must_fail("Deployment with `replica`", validate + [write("typo.yaml", [typo])])
        bad_probe = copy.deepcopy(deployment)
        bad_probe["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"]["port"] = "grpc"
        must_fail("gRPC probe with a named port", validate + [write("probe.yaml", [bad_probe])])
        hpa = documents("hpa.yaml")[0]
        hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] = "70%"
        must_fail("HPA utilization as a string", validate + [write("hpa.yaml", [hpa])])
        monitor = documents("servicemonitor.yaml")[0]
        monitor["spec"]["endpoints"][0]["interval"] = "fifteen seconds"
        must_fail(
            "ServiceMonitor with a bad interval",
            [str(BIN / "check-jsonschema"), "--schemafile", str(DEPLOY / "schemas/servicemonitor.json"),
             write("monitor.yaml", [monitor])],
        )
        dockerfile = tmp / "Dockerfile"
        dockerfile.write_text((DEPLOY / "docker/Dockerfile").read_text().replace("USER 10001:10001\n", "") + "RUN cd /tmp\n")
        must_fail("Dockerfile without USER, with `RUN cd`", [str(BIN / "hadolint"), str(dockerfile)])


if __name__ == "__main__":
    if sys.argv[1:] == ["probes"]:
        print(" ".join(consistency()))
    elif sys.argv[1:] == ["negative"]:
        negative_cases()
    else:
        fail("usage: check_manifests.py probes|negative")
