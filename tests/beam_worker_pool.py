"""Beam's worker pool (apache_beam.runners.worker.worker_pool_main) on the loopback interface.

    python tests/beam_worker_pool.py PORT

worker_pool_main listens on every interface ([::]:PORT), and anyone who reaches it can start
an SDK worker that runs the code a control service sends: the tests start the same servicer
bound to 127.0.0.1. Like worker_pool_main, it starts each worker as `python` from PATH.
"""

from __future__ import annotations

import logging
import sys

import grpc
from apache_beam.portability.api import beam_fn_api_pb2_grpc
from apache_beam.runners.worker.worker_pool_main import BeamFnExternalWorkerPoolServicer
from apache_beam.utils import thread_pool_executor


def main(port: int) -> None:
    logging.basicConfig(level=logging.INFO)
    server = grpc.server(thread_pool_executor.shared_unbounded_instance())
    if server.add_insecure_port(f"127.0.0.1:{port}") != port:
        sys.exit(f"cannot listen on 127.0.0.1:{port}")
    beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(
        BeamFnExternalWorkerPoolServicer(use_process=True), server)
    server.start()
    logging.info("worker pool listening on 127.0.0.1:%d", port)
    server.wait_for_termination()


if __name__ == "__main__":
    main(int(sys.argv[1]))
