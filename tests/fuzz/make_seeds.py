"""Writes the seed corpora of tests/fuzz/corpus/<fuzzer>/: realistic inputs
the fuzzers start from (a real job description, a real task spec with
cloudpickled functions, a request for every route and every gRPC method).

Run with Debian's python3 from the repository root; the files are committed,
so this runs again only when a format changes. Files named regression-* are
inputs that once found a bug and are kept by hand, never rewritten here.
"""
import base64
import json
import os
import pickle
import struct
import sys

import cloudpickle

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

# Method indexes: the order of each daemon's method table (master_cluster.c,
# worker.c, blockd.c), which is the server's registration order.
MASTER = ["RegisterWorker", "RegisterBlockManager", "Heartbeat", "ReportTask",
          "CreateApplication", "EndApplication", "SubmitJob", "GetJob", "CancelJob",
          "Unpersist", "AddBroadcast", "RemoveBroadcast", "Query", "ReportTasks",
          "SubmitDriver", "ReportDriver", "DriverStatus", "KillDriver", "DriverLog"]
WORKER = ["LaunchTask", "KillTask", "LaunchTasks", "LaunchDriver", "KillDriver"]
BLOCKD = ["PutBlock", "GetBlock", "GetRanges", "RemoveBlocks", "Stats", "PutBlockLocal"]


def varint(n: int) -> bytes:
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(number: int, value) -> bytes:
    """One protobuf field: ints as varints, str/bytes length-delimited."""
    if isinstance(value, bool) or isinstance(value, int):
        return varint(number << 3) + varint(int(value))
    if isinstance(value, str):
        value = value.encode()
    return varint(number << 3 | 2) + varint(len(value)) + value


def msg(*fields) -> bytes:
    return b"".join(field(n, v) for n, v in fields)


def write(fuzzer: str, name: str, data: bytes) -> None:
    folder = os.path.join(ROOT, fuzzer)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def b64(obj) -> str:
    return base64.b64encode(obj).decode()


def job_json() -> str:
    """What the driver sends for sc.parallelize([...], 2).map(...).reduceByKey(add).collect()."""
    identity = cloudpickle.dumps(lambda split, it: it)
    pairs = cloudpickle.dumps(lambda split, it: ((w, 1) for w in it))
    part = cloudpickle.dumps(lambda k: hash(k))
    return json.dumps({
        "rdd": 3, "description": "collect at wc.py:7", "callSite": "wc.py:7",
        "partitions": [0, 1], "submissionId": "s-1",
        "properties": {"spark.job.description": "wc", "spark.driver.maxResultSize": "1g"},
        "storage": {"2": {"useDisk": False, "useMemory": True, "useOffHeap": False,
                          "replication": 1}},
        "broadcasts": [],
        "nodes": [
            {"id": 1, "kind": "data", "numPartitions": 2, "name": "parallelize",
             "slices": [b64(pickle.dumps(["a", "b"])), b64(pickle.dumps(["a"]))]},
            {"id": 2, "kind": "map", "parent": 1, "func": b64(pairs), "name": "map"},
            {"id": 3, "kind": "shuffle", "parent": 2, "numPartitions": 2,
             "partitioner": b64(part)},
            {"id": 4, "kind": "map", "parent": 3, "func": b64(identity)},
            {"id": 5, "kind": "union", "parents": [1, 4]},
            {"id": 6, "kind": "concat", "parents": [1, 4], "combine": "zip",
             "numPartitions": 1, "groups": [[[0, 0], [1, 0]]]},
            {"id": 7, "kind": "text", "numPartitions": 1,
             "splits": [{"path": "/nonexistent/a.txt", "start": 0, "length": 10}]},
        ]})


def task_spec() -> bytes:
    func = cloudpickle.dumps(lambda split, it: (x * 2 for x in it))
    plan = json.dumps({"input": "pickle", "funcs": [0], "cacheAt": [[1, 0]], "split": 0})
    data_input = msg((1, 1), (3, pickle.dumps([1, 2, 3])))
    text_input = msg((1, 0), (2, msg((1, "/nonexistent/x.txt"), (2, 0), (3, 100))))
    shuffle_input = msg((1, 2), (4, 1), (5, "127.0.0.1:1"), (6, 0), (7, 0), (8, 10))
    cache = msg((2, "rdd_1_0"), (3, 1))
    return msg((1, "app-fuzz"), (2, 1), (3, 1), (4, 7), (5, 0), (6, 0), (7, func),
               (12, msg((1, "spark.job.description"), (2, "x"))), (13, cache), (15, plan),
               (16, data_input), (16, text_input), (16, shuffle_input))


def driver_submission() -> bytes:
    """DriverSubmission of `ember-submit --deploy-mode cluster main.py a b`."""
    return msg((1, "fuzz"), (2, "main.py"), (3, "a"), (3, "b"),
               (4, msg((1, "main.py"), (2, b"print('driver')\n"))),
               (4, msg((1, "lib/util.py"), (2, b"X = 1\n"))), (5, "lib/util.py"),
               (7, "spark.ember.logLevel=warn"), (9, "127.0.0.1:1"))


def master_seeds() -> None:
    def put(method: str, body: bytes) -> None:
        write("fuzz_master", method, bytes([MASTER.index(method)]) + body)

    put("RegisterWorker", msg((1, "w2"), (2, "127.0.0.1:1"), (3, "127.0.0.1"), (4, 2),
                              (5, "127.0.0.1:1"), (6, 2)))
    put("RegisterBlockManager", msg((1, "b2"), (2, "127.0.0.1:1"), (3, "127.0.0.1"),
                                    (4, 1 << 20)))
    put("Heartbeat", msg((1, "b1"), (2, True), (3, 1), (6, "rdd_1_0"), (6, "rdd_1_1")))
    put("ReportTask", msg((1, 1), (2, "w1"), (3, True), (5, msg((1, 5))), (6, "127.0.0.1:1"),
                          (9, 10), (10, msg((1, "rdd_1_0"), (2, 5), (3, "127.0.0.1:1")))))
    report = msg((1, 1), (2, "w1"), (3, True), (5, msg((1, 5))), (14, True), (15, b"\0\0\0\1N"))
    put("ReportTasks", msg((1, report), (1, msg((1, 2), (2, "w1"), (4, "boom")))))
    put("CreateApplication", msg((1, "name"), (2, "user")))
    put("EndApplication", msg((1, "app")))
    put("SubmitJob", msg((1, "app"), (2, job_json())))
    put("GetJob", msg((1, "app"), (2, 1)))
    put("CancelJob", msg((1, "app"), (2, 1)))
    put("Unpersist", msg((1, "app"), (2, 2)))
    put("AddBroadcast", msg((1, "app"), (2, 1), (3, "broadcast_1_app_v"), (4, "127.0.0.1:1"),
                            (5, 10)))
    put("RemoveBroadcast", msg((1, "app"), (2, 1), (3, True)))
    put("SubmitDriver", driver_submission())
    put("ReportDriver", msg((1, "driver-1"), (2, "w1"), (3, "FINISHED"), (4, 0), (6, b"out"),
                            (7, b"err")))
    put("DriverStatus", msg((1, "driver-1")))
    put("KillDriver", msg((1, "driver-1")))
    put("DriverLog", msg((1, "driver-1"), (2, "stdout"), (3, 0)))
    for what in ["applications", "jobs", "stages", "stage", "executors", "storage",
                 "environment", "metrics", "blockmanagers"]:
        write("fuzz_master", "Query-" + what,
              bytes([MASTER.index("Query")]) + msg((1, what), (2, "app"), (3, 1)))


def worker_seeds() -> None:
    write("fuzz_worker", "LaunchTask", bytes([WORKER.index("LaunchTask")]) + task_spec())
    write("fuzz_worker", "LaunchTasks", bytes([WORKER.index("LaunchTasks")])
          + msg((1, task_spec()), (1, task_spec())))
    write("fuzz_worker", "LaunchTasks-report-wait", bytes([WORKER.index("LaunchTasks")])
          + msg((1, task_spec()), (1, task_spec()), (2, 5)))
    write("fuzz_worker", "KillTask", bytes([WORKER.index("KillTask")]) + msg((1, 7)))
    write("fuzz_worker", "LaunchDriver", bytes([WORKER.index("LaunchDriver")])
          + msg((1, "driver-fuzz-1"), (2, driver_submission())))
    write("fuzz_worker", "KillDriver", bytes([WORKER.index("KillDriver")])
          + msg((1, "driver-fuzz-1")))


def blockd_seeds() -> None:
    def put(name: str, method: str, body: bytes) -> None:
        write("fuzz_blockd", name, bytes([BLOCKD.index(method)]) + body)

    put("PutBlock", "PutBlock", msg((1, "shuffle_1_0"), (3, b"\0\0\0\3abc"), (4, True)))
    put("PutBlock-part", "PutBlock", msg((1, "rdd_1_0"), (2, 0), (3, b"abc"), (5, 2)))
    put("GetBlock", "GetBlock", msg((1, "shuffle_1_0"), (2, True), (3, 1), (4, 2)))
    put("GetRanges", "GetRanges", msg((1, msg((1, "shuffle_1_0"), (2, 0), (3, 3))),
                                      (1, msg((1, "rdd_1_0"), (2, 1), (3, 1)))))
    put("RemoveBlocks", "RemoveBlocks", msg((1, "shuffle_")))
    put("Stats", "Stats", b"")
    put("PutBlockLocal", "PutBlockLocal", msg((1, "rdd_1_0"), (2, 1), (3, "/proc/1/fd/0"),
                                              (4, "0123456789abcdef0123456789abcdef"), (5, 3)))


def gateway_seeds() -> None:
    def request(method: str, path: str, body: bytes = b"", headers: str = "") -> bytes:
        head = f"{method} {path} HTTP/1.1\r\nHost: x\r\n{headers}"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        return head.encode() + b"\r\n" + body

    app = "app-00000000000000-0000"   # fuzz_gateway's APP_PLACEHOLDER: its real application
    seeds = {
        "health": request("GET", "/health"),
        "ui": request("GET", "/"),
        "jobs-page": request("GET", "/jobs"),
        "metrics": request("GET", "/metrics"),
        "create-app": request("POST", "/api/v1/applications", b'{"name": "x", "user": "u"}'),
        "list-apps": request("GET", "/api/v1/applications"),
        "end-app": request("DELETE", f"/api/v1/applications/{app}"),
        "submit-job": request("POST", f"/api/v1/applications/{app}/jobs", job_json().encode()),
        "submit-job-wait": request("POST",
                                   f"/api/v1/applications/{app}/jobs?waitMs=10&inlineResults=1",
                                   job_json().encode()),
        "get-job": request("GET", f"/api/v1/applications/{app}/jobs/1"),
        "cancel": request("POST", f"/api/v1/applications/{app}/jobs/1/cancel"),
        "result": request("GET", f"/api/v1/applications/{app}/jobs/1/results/0"),
        "stage": request("GET", f"/api/v1/applications/{app}/stages/0"),
        "storage": request("GET", "/api/v1/storage/rdd"),
        "unpersist": request("DELETE", f"/api/v1/applications/{app}/rdds/2"),
        "broadcast-put": request("PUT", f"/api/v1/applications/{app}/broadcasts/1",
                                 pickle.dumps([1, 2])),
        "broadcast-delete": request("DELETE",
                                    f"/api/v1/applications/{app}/broadcasts/1?keepSource=1"),
        "environment": request("GET", f"/api/v1/applications/{app}/environment"),
        "head": request("HEAD", "/api/v1/jobs"),
        "not-allowed": request("PATCH", "/api/v1/applications"),
        "chunked": (b"POST /api/v1/applications HTTP/1.1\r\nHost: x\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"nam\r\n0\r\n\r\n"),
        "keep-alive": request("GET", "/health") + request("GET", "/api/v1/executors"),
        "driver-submit": request("POST", "/api/v1/drivers", json.dumps({
            "name": "fuzz", "mainResource": "main.py", "appArgs": ["a"], "pyFiles": [],
            "files": [], "propertiesFile": "", "conf": {"spark.ember.logLevel": "warn"},
            "uploads": [{"path": "main.py", "data": b64(b"print(1)\n")}]}).encode()),
        "driver-list": request("GET", "/api/v1/drivers"),
        "driver-status": request("GET", "/api/v1/drivers/driver-1"),
        "driver-kill": request("POST", "/api/v1/drivers/driver-1/kill"),
        "driver-log": request("GET", "/api/v1/drivers/driver-1/stderr?offset=0"),
    }
    for name, data in seeds.items():
        write("fuzz_gateway", name, data)


def frame_seeds() -> None:
    def frame(payload: bytes) -> bytes:
        return struct.pack(">i", len(payload)) + payload

    write("fuzz_frame", "frames", b"\0" + frame(b"hello") + struct.pack(">i", -1)
          + frame(b'{"recordsIn": 1}'))
    write("fuzz_frame", "cache", b"\1" + struct.pack(">i", -3) + frame(b"\0\0\0\0x")
          + struct.pack(">i", -2) + frame(b"Traceback"))


def main() -> int:
    master_seeds()
    write("fuzz_master_job", "job.json", job_json().encode())
    worker_seeds()
    blockd_seeds()
    gateway_seeds()
    frame_seeds()
    return 0


if __name__ == "__main__":
    sys.exit(main())
