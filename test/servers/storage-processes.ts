/**
 * Process plumbing for the storage test servers: port probes, spawning a daemon with its output in a
 * log file, stopping by PID, and the cross-process bookkeeping for test runs sharing this machine:
 * a start lock, the runs currently using the servers, and the servers test runs started (so the
 * last run to leave stops them, and no run stops a server another run is using).
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const STATE_DIR = '/tmp/quayfleet-storage-servers';
const LOCK_DIR = path.join(STATE_DIR, 'start.lock');
const USERS_DIR = path.join(STATE_DIR, 'users');
const OWNED_DIR = path.join(STATE_DIR, 'owned');

/** Resolves true when something accepts TCP connections on 127.0.0.1:`port`. */
export function portAnswers(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Polls until `port` answers; fails early when `alive()` says the server process died. */
export async function waitForPort(name: string, port: number, timeoutMs: number, alive: () => boolean = () => true, logFile?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await portAnswers(port)) return;
    if (!alive()) throw new Error(`${name} exited before listening on port ${port}${logFile ? `; see ${logFile}` : ''}`);
    await sleep(100);
  }
  throw new Error(`${name} did not listen on port ${port} within ${timeoutMs} ms${logFile ? `; see ${logFile}` : ''}`);
}

/** Whether process `pid` exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts `command` detached in `cwd`, its output in `logFile`; returns its PID and an exit watcher. */
export function spawnDaemon(command: string, args: readonly string[], logFile: string, cwd: string): { pid: number; exited: () => boolean } {
  mkdirSync(path.dirname(logFile), { recursive: true });
  mkdirSync(cwd, { recursive: true });
  const log = openSync(logFile, 'w');
  const child = spawn(command, args, { detached: true, stdio: ['ignore', log, log], cwd });
  closeSync(log);
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  let exited = false;
  child.once('exit', () => { exited = true; });
  child.unref();
  return { pid: child.pid, exited: () => exited };
}

/** Runs `command` to completion, failing with its exit code and log file. */
export function runToCompletion(command: string, args: readonly string[], logFile: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<number> {
  mkdirSync(path.dirname(logFile), { recursive: true });
  const log = openSync(logFile, 'w');
  const child = spawn(command, args, { stdio: ['ignore', log, log], env, timeout: timeoutMs });
  closeSync(log);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/** Sends SIGTERM to `pid`, waits up to `graceMs` for it to exit, then SIGKILLs it. */
export async function stopPid(pid: number, graceMs = 10_000): Promise<void> {
  if (!isAlive(pid)) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(100);
  if (!isAlive(pid)) return;
  process.kill(pid, 'SIGKILL');
  // Wait for it to be gone: a retry that starts a new Ceph while the old monitor still answers on
  // the fixed port gets 'wrong fsid' from it.
  const killDeadline = Date.now() + 5_000;
  while (isAlive(pid) && Date.now() < killDeadline) await sleep(100);
}

/**
 * Runs `fn` holding a machine-wide lock, so two test runs starting at once do not both start (and
 * clobber) the same server. The lock records its holder's PID: a lock whose holder is gone, or older
 * than `staleMs` (longer than any start takes), is taken over.
 */
export async function withStartLock<T>(fn: () => Promise<T>, staleMs = 300_000): Promise<T> {
  mkdirSync(STATE_DIR, { recursive: true });
  const holderFile = path.join(LOCK_DIR, 'pid');
  for (;;) {
    try {
      mkdirSync(LOCK_DIR);
      writeFileSync(holderFile, String(process.pid));
      break;
    } catch {
      const holder = Number(readOrUndefined(holderFile));
      const age = Date.now() - (statOrUndefined(LOCK_DIR)?.mtimeMs ?? 0);
      // A holder that has not yet written its PID gets a second before it counts as gone.
      const holderGone = holder > 0 ? !isAlive(holder) : age > 1000;
      if (holderGone || age > staleMs) rmSync(LOCK_DIR, { recursive: true, force: true });
      else await sleep(200);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(LOCK_DIR, { recursive: true, force: true });
  }
}

/** A server a test run started, recorded so the last run using it can stop it. */
export interface OwnedServer {
  readonly name: string;
  readonly pids: readonly number[];
  /** A directory to delete once the server is stopped. */
  readonly dir?: string;
}

/** Records this process as a user of the shared servers (call under the start lock). */
export function registerUser(): void {
  mkdirSync(USERS_DIR, { recursive: true });
  writeFileSync(path.join(USERS_DIR, String(process.pid)), '');
}

/** Removes this process from the users; returns how many other live processes still use the servers. */
export function releaseUser(): number {
  rmSync(path.join(USERS_DIR, String(process.pid)), { force: true });
  let others = 0;
  for (const name of readdirSync(USERS_DIR)) {
    if (isAlive(Number(name))) others++;
    else rmSync(path.join(USERS_DIR, name), { force: true });
  }
  return others;
}

/** Records a server a test run started. */
export function recordOwned(server: OwnedServer): void {
  mkdirSync(OWNED_DIR, { recursive: true });
  writeFileSync(path.join(OWNED_DIR, `${server.name.replace(/\W+/g, '-')}.json`), JSON.stringify(server));
}

/** Stops every server test runs started (by their recorded PIDs) and forgets them. */
export async function stopOwned(): Promise<void> {
  let files: string[];
  try {
    files = readdirSync(OWNED_DIR);
  } catch {
    return;
  }
  for (const file of files) {
    const server = JSON.parse(readFileSync(path.join(OWNED_DIR, file), 'utf8')) as OwnedServer;
    for (const pid of server.pids) await stopPid(pid);
    if (server.dir) rmSync(server.dir, { recursive: true, force: true });
    rmSync(path.join(OWNED_DIR, file), { force: true });
  }
}

function readOrUndefined(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function statOrUndefined(file: string): { mtimeMs: number } | undefined {
  try {
    return statSync(file);
  } catch {
    return undefined;
  }
}
