"""Clusters started here rather than by the module fixture (a process runs one
SparkContext at a time):

* a driver given the secret as ``spark.authenticate.secret`` runs jobs against a
  cluster logging at debug level, and no log shows the secret; without the
  secret the driver is refused with a sentence saying so;
* with a self-signed certificate made here with openssl, the whole cluster
  speaks TLS: a job with a shuffle and result downloads runs end to end over
  HTTPS and gRPC, so does a cluster-mode driver submitted by ember-submit (libcurl),
  and plain HTTP and plain gRPC clients are refused.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import BIN_DIR, Gateway
from ember import SparkConf, SparkContext
from ember.local_cluster import LocalCluster


def test_driver_takes_the_secret_from_conf_and_logs_stay_clean(tmp_path, monkeypatch):
    """A cluster at debug log level, a driver given the secret as
    spark.authenticate.secret: the job runs, nothing shows the secret."""
    monkeypatch.delenv("EMBER_AUTH_SECRET", raising=False)
    cluster = LocalCluster(1, log_level="debug").start()
    try:
        with pytest.raises(Exception, match="shared secret"):
            SparkContext(f"ember://{cluster.gateway_address}", "no-secret")
        conf = SparkConf().set("spark.authenticate.secret", cluster.secret)
        with SparkContext(f"ember://{cluster.gateway_address}", "conf-secret", conf=conf) as sc:
            assert sc.parallelize(range(10), 2).map(lambda x: x * 2).sum() == 90
            env = Gateway(cluster.gateway_address, cluster.secret).api(
                f"/applications/{sc.applicationId}/environment")
            assert cluster.secret not in json.dumps(env)
        for log in Path(cluster.log_dir).glob("*.log"):
            text = log.read_text(errors="replace")
            assert cluster.secret not in text, f"{log.name} holds the secret"
    finally:
        cluster.stop()


# ---- TLS --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and localhost, made with openssl."""
    openssl = shutil.which("openssl")
    if not openssl:
        pytest.fail("openssl is missing: deploy/install-deps.sh installs it")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=ember-test", "-addext",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return str(cert), str(key)


def test_a_job_runs_end_to_end_over_tls(certificate, tmp_path, monkeypatch):
    cert, key = certificate
    cluster = LocalCluster(2, tls=(cert, key)).start()
    try:
        monkeypatch.setenv("EMBER_AUTH_SECRET", cluster.secret)
        monkeypatch.setenv("EMBER_TLS_CA", cert)
        data = tmp_path / "in.txt"
        data.write_text("x y\n" * 50)
        with SparkContext(f"ember://{cluster.gateway_address}", "over-tls") as sc:
            assert sc.uiWebUrl.startswith("https://")
            counts = dict(sc.textFile(str(data), 2).flatMap(str.split).map(lambda w: (w, 1))
                          .reduceByKey(lambda a, b: a + b, 2).collect())   # a shuffle
            assert counts == {"x": 50, "y": 50}
            big = sc.parallelize(range(200_000), 2).map(lambda x: x).collect()  # result blocks
            assert len(big) == 200_000
        # Cluster mode: ember-submit (libcurl, CAINFO) uploads over HTTPS; the driver
        # runs on a worker, which hands it its secret and CA.
        script = tmp_path / "driver.py"
        script.write_text("from pyspark import SparkContext\n"
                          "sc = SparkContext()\n"
                          "print('TLS', sc.uiWebUrl.split(':')[0], sc.parallelize(range(5)).sum())\n")
        done = subprocess.run([str(BIN_DIR / "ember-submit"), "--master",
                               f"ember://{cluster.gateway_address}", "--deploy-mode", "cluster",
                               str(script)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "TLS https 10" in done.stdout
        host, port = cluster.gateway_address.rsplit(":", 1)
        plain = http.client.HTTPConnection(host, int(port), timeout=15)
        with pytest.raises((OSError, http.client.HTTPException)):
            plain.request("GET", "/health")
            plain.getresponse().read()
        plain.close()
        health = BIN_DIR / "ember-health"
        env = dict(os.environ, EMBER_AUTH_SECRET=cluster.secret)
        env.pop("EMBER_TLS_CA")
        refused = subprocess.run([str(health), "master", cluster.master_address], env=env,
                                 capture_output=True, text=True, timeout=30)
        assert refused.returncode == 1, refused
        served = subprocess.run([str(health), "--tls-ca", cert, "master",
                                 cluster.master_address], env=env, capture_output=True,
                                text=True, timeout=30)
        assert served.returncode == 0, served.stderr
    finally:
        cluster.stop()
