"""Command line: python -m tests.emulator --workdir DIR [--port N] [--topology FILE] [...]."""
import argparse
import json
import signal
import sys
import threading

import yaml

from .server import EmulatorServer
from .state import TopologyError


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.emulator",
                                     description="Azure Service Management (classic) emulator, for local use only.")
    parser.add_argument("--workdir", required=True, help="where key material and connection.json are kept")
    parser.add_argument("--port", type=int, default=0, help="listening port on 127.0.0.1 (0: a free port)")
    parser.add_argument("--topology", help="YAML file describing cloud services, deployments and roles")
    parser.add_argument("--operation-seconds", type=float, default=2.0,
                        help="how long a role-instance operation stays InProgress")
    parser.add_argument("--recovery-seconds", type=float, default=2.0,
                        help="how long an instance takes to report ReadyRole after its operation succeeded")
    args = parser.parse_args(argv)

    topology = None
    if args.topology:
        try:
            with open(args.topology, encoding="utf-8") as handle:
                topology = yaml.safe_load(handle)
        except (OSError, yaml.YAMLError) as exc:
            parser.error("cannot read topology %s: %s" % (args.topology, exc))
    try:
        server = EmulatorServer(args.workdir, args.port, topology, args.operation_seconds, args.recovery_seconds)
    except TopologyError as exc:
        parser.error("invalid topology: %s" % exc)
    except OSError as exc:
        parser.error("cannot listen on port %s: %s" % (args.port, exc))

    stopped = threading.Event()

    def on_signal(signum, frame):  # pylint: disable=unused-argument
        stopped.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    info = server.start()
    summary = {"management_url": info["management_url"], "subscription_id": info["subscription_id"]}
    print("emulator listening: %s" % json.dumps(summary), flush=True)
    stopped.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
