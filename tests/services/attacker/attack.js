// The attacks of attack.py from a Node.js function: each returns what it managed to do, or
// null. Forking a thousand processes is left to a Python child (node cannot fork): it runs
// in the same jail, as anything the function starts does.
'use strict';

const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const MARKER = 'victim-marker.txt';

function read(file) {
  try {
    return `read ${fs.readFileSync(file).length} bytes of ${file}`;
  } catch {
    return null;
  }
}

function listing(dir) {
  try {
    const names = fs.readdirSync(dir);
    return names.length ? `listed ${dir}: ${names.slice(0, 5)}` : null;
  } catch {
    return null;
  }
}

function write(file) {
  try {
    fs.appendFileSync(file, '# pwned\n');
    return `wrote ${file}`;
  } catch {
    return null;
  }
}

function signal(pid) {
  try {
    process.kill(pid, 0); // the permission check of any signal
    return `could signal ${pid}`;
  } catch {
    return null;
  }
}

const first = (results) => results.find((r) => r) || null;

function status() {
  const out = {};
  for (const line of fs.readFileSync('/proc/self/status', 'utf8').split('\n')) {
    const [key, value] = line.split(':\t');
    if (value !== undefined) out[key] = value.trim();
  }
  return out;
}

function globTmpMarkers() {
  const found = [];
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    found.push(read(`/proc/${pid}/root/tmp/${MARKER}`));
  }
  return found;
}

exports.attack = async (event) => {
  const dataDir = event.data_dir;
  const server = Number(event.server_pid);
  const victim = Number(event.victim_pid);
  const st = status();
  const visible = fs
    .readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .map(Number)
    .sort((a, b) => a - b);
  const victimCodes = [];
  try {
    for (const dir of fs.readdirSync(path.join(dataDir, 'code'))) {
      victimCodes.push(read(path.join(dataDir, 'code', dir, 'victim.py')));
    }
  } catch {}
  const found = {
    credentials: read(path.join(dataDir, 'credentials')),
    master_key: read(path.join(dataDir, 'master.key')),
    registry: read(path.join(dataDir, 'registry.sqlite3')),
    data_dir_visible: fs.existsSync(dataDir) ? `${dataDir} exists` : null,
    host_root: first([
      read(`/.host${dataDir}/credentials`),
      listing('/.host'),
      listing('/.host/etc'),
    ]),
    other_code: first([
      read(event.victim_code),
      read(`/proc/${victim}/root/var/task/victim.py`),
      ...victimCodes,
    ]),
    other_tmp: first([read(`/tmp/${MARKER}`), ...globTmpMarkers()]),
    server_environ: first([
      read(`/proc/${server}/environ`),
      // Not its own: node is dumpable after its exec, and its start environment is the
      // worker's base one (PATH, LANG), not the server's.
      ...visible.filter((p) => p !== process.pid).map((p) => read(`/proc/${p}/environ`)),
    ]),
    write_other_code: write(event.victim_code),
    signal_server: signal(server),
    signal_other_worker: signal(victim),
    signal_visible: first(visible.filter((p) => p !== process.pid).map(signal)),
    root: process.getuid() === 0 || process.geteuid() === 0 ? 'uid 0' : null,
    capabilities: first(
      ['CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'CapInh']
        .filter((k) => BigInt(`0x${st[k]}`) !== 0n)
        .map((k) => `${k} ${st[k]}`),
    ),
    new_privileges: st.NoNewPrivs === '1' ? null : 'no_new_privs is off',
    ipc: (() => {
      try {
        const rows = fs.readFileSync('/proc/sysvipc/shm', 'utf8').trim().split('\n').slice(1);
        return rows.length ? `${rows.length} System V segments visible` : null;
      } catch {
        return null;
      }
    })(),
    more_than_1024_processes: null,
  };
  // Forks from a child of node's, which the jail's limits count with node.
  const code = 'import attack, json; print(json.dumps([attack._processes(), attack._threads()]))';
  const [processes, threads] = JSON.parse(
    execFileSync('python3', ['-c', code], { cwd: '/var/task', encoding: 'utf8' }),
  );
  if (processes > 1024) found.more_than_1024_processes = `${processes} processes at once`;
  let openFiles = 0;
  const fds = [];
  try {
    for (; openFiles < 2000; openFiles++) fds.push(fs.openSync('/dev/null', 'r'));
  } catch {}
  for (const fd of fds) fs.closeSync(fd);
  let tmpMb = 0;
  const chunk = Buffer.alloc(1 << 20);
  try {
    const fd = fs.openSync('/tmp/fill', 'w');
    try {
      for (; tmpMb < 20000; tmpMb++) fs.writeSync(fd, chunk);
    } finally {
      fs.closeSync(fd);
    }
  } catch {}
  fs.rmSync('/tmp/fill', { force: true });
  return {
    found,
    uid: process.getuid(),
    visible_pids: visible,
    processes,
    threads,
    open_files: openFiles,
    tmp_mb: tmpMb,
  };
};

// Leaves a daemon behind (double fork, own session: attack.py's), then runs past its timeout.
exports.lingerThenSleep = async () => {
  // stdio ignored: the daemon keeps whatever it inherits, and a pipe would never reach EOF.
  execFileSync('python3', ['-c', 'import attack; attack._daemon()'], {
    cwd: '/var/task',
    stdio: 'ignore',
  });
  console.log(`uid ${process.getuid()}`);
  await new Promise((resolve) => setTimeout(resolve, 60000));
};

// Leaves a child nobody waits for, then kills its own process.
exports.forkAndDie = () => {
  require('child_process').spawn('/bin/true', { stdio: 'ignore' });
  process.kill(process.pid, 'SIGKILL');
};
