"""`make cluster`: the scaled-out topology on one machine (docs/interfaces.md#commands). Pushpin on
PORT holds the open event streams in front of WEB_PROCESSES uvicorn processes, WORKER_PROCESSES
Dramatiq workers share the Redis broker, PostgreSQL (DATABASE_URL) holds the data, and the GitHub
simulator stands in for GitHub unless GITHUB_API_URL is set. A web process, worker or Pushpin that
dies is started again; the other processes and the open streams stay. Ctrl-C or SIGTERM stops
everything."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from pushpin import configure_pushpin, pushpin_ports, wait_until_free
from run import (
    print_how_to_log_in,
    start,
    start_github_simulator,
    stop,
    stop_on_sigterm,
    wait_until_serving,
    web_command,
    worker_command,
)
from services import ensure_redis


def pushpin_binary():
    found = shutil.which("pushpin")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("Installing Pushpin from Debian's packages…", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "pushpin"],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        return shutil.which("pushpin")
    sys.exit("make cluster needs Pushpin: install Debian's package (sudo apt-get install pushpin) or see pushpin.org.")


def web_socket():
    """The listening socket the web processes share (uvicorn --fd), bound before any of them starts."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(2048)
    listener.set_inheritable(True)
    return listener


def start_web(listener, processes):
    fd = listener.fileno()
    return start(web_command("--fd", str(fd)), processes, pass_fds=[fd])


def stop_leftovers(session):
    """Kill what a dead process left running in its session, before it is started again. Pushpin's
    runner starts its services in process groups of their own: a runner killed without stopping
    them (SIGKILL, the OOM killer) leaves them holding its port, and every Pushpin started again
    then failed to bind it."""
    if not Path("/proc").is_dir():
        return  # not Linux: nothing to find them by
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.getsid(int(entry.name)) == session:
                os.kill(int(entry.name), signal.SIGKILL)
        except OSError:
            continue  # gone meanwhile


def main():
    port = int(os.environ.setdefault("PORT", "8000"))
    web_processes = int(os.environ.get("WEB_PROCESSES", "2"))
    worker_processes = int(os.environ.get("WORKER_PROCESSES", "2"))
    processes = []
    pushpin_conf = None
    stop_on_sigterm()
    try:
        pushpin = pushpin_binary()
        redis_server = ensure_redis(daemonize=False)
        if redis_server is not None:
            processes.append(redis_server)
        if not os.environ.get("GITHUB_API_URL"):
            os.environ.update(start_github_simulator(processes, port))
        listener = web_socket()
        pushpin_conf, os.environ["GRIP_URL"] = configure_pushpin(port, listener.getsockname()[1])
        # What dies is started again: the web processes, the workers and Pushpin itself.
        restarts = {}

        def keep_running(start_one):
            process = start_one()
            restarts[process] = start_one
            return process

        def start_pushpin():
            if not wait_until_free(pushpin_ports(pushpin_conf)):
                print("Pushpin's ports are still taken after 10 s; starting it anyway.", flush=True)
            return start([pushpin, "--config", str(pushpin_conf), "--merge-output"], processes)

        keep_running(start_pushpin)
        for _ in range(worker_processes):
            keep_running(lambda: start(worker_command(), processes))
        for _ in range(web_processes):
            keep_running(lambda: start_web(listener, processes))
        base = f"http://127.0.0.1:{port}"
        if not wait_until_serving(f"{base}/accounts/login/", processes):
            sys.exit("The cluster did not start; see the output above.")
        print(f"Pushpin on port {port} in front of {web_processes} web processes; {worker_processes} workers.")
        print_how_to_log_in(base)
        while True:
            time.sleep(0.5)
            for process, start_one in list(restarts.items()):
                if process.poll() is not None:
                    name = " ".join(process.args[:4])
                    print(
                        f"{name} (pid {process.pid}) exited with {process.returncode}; starting it again.", flush=True
                    )
                    processes.remove(process)
                    del restarts[process]
                    # Each was started in a session of its own (start_new_session), named by its pid.
                    stop_leftovers(process.pid)
                    keep_running(start_one)
            if any(process.poll() is not None for process in processes):
                sys.exit("Redis or the GitHub simulator stopped; stopping the others.")
    except KeyboardInterrupt:
        print("\nStopping…", flush=True)
    finally:
        stop(list(reversed(processes)))
        if pushpin_conf is not None:
            shutil.rmtree(pushpin_conf.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
