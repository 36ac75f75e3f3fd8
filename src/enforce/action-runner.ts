/**
 * Runs rendered action commands with `/bin/sh -c`, as fail2ban does, under three bounds: a
 * timeout per command (the process group is killed, so a hung `mail` child dies with its shell),
 * a cap on commands running at once, and a cap on output kept for the log.
 */
import { spawn } from 'node:child_process';
import type { RenderedCommand } from './action-template.js';

export interface RunResult {
  readonly ok: boolean;
  /** exit code; null when killed by a signal */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly timedOut: boolean;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
  /** spawn failure (no /bin/sh…) */
  readonly error?: string;
}

export interface RunnerOptions {
  /** default `/bin/sh` */
  readonly shell?: string;
  /** commands running at once; default 4 */
  readonly concurrency?: number;
  /** bytes of stdout / stderr kept each; default 8 KiB */
  readonly maxOutput?: number;
}

const KILL_GRACE_MS = 1000;

export class CommandRunner {
  readonly #shell: string;
  readonly #limit: number;
  readonly #maxOutput: number;
  #running = 0;
  readonly #waiting: Array<() => void> = [];
  readonly #children = new Set<number>();

  constructor(opts: RunnerOptions = {}) {
    this.#shell = opts.shell ?? '/bin/sh';
    this.#limit = Math.max(1, opts.concurrency ?? 4);
    this.#maxOutput = opts.maxOutput ?? 8192;
  }

  get running(): number {
    return this.#running;
  }
  get queued(): number {
    return this.#waiting.length;
  }

  async run(cmd: RenderedCommand, timeoutMs: number): Promise<RunResult> {
    if (this.#running >= this.#limit) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.#running++;
    try {
      return await this.#spawn(cmd, timeoutMs);
    } finally {
      this.#running--;
      this.#waiting.shift()?.();
    }
  }

  /** Kill every command still running (daemon shutdown past its grace). */
  killAll(): void {
    for (const pid of this.#children) killGroup(pid, 'SIGKILL');
  }

  #spawn(cmd: RenderedCommand, timeoutMs: number): Promise<RunResult> {
    const started = Date.now();
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) {
      // A stray AEGIS_TAG_* from our own environment must not stand in for a missing tag.
      if (v !== undefined && !k.startsWith('AEGIS_TAG_')) env[k] = v;
    }
    Object.assign(env, cmd.env);
    return new Promise((resolve) => {
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      let settled = false;
      const max = this.#maxOutput;
      const child = spawn(this.#shell, ['-c', cmd.script], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
        // own process group, so a timeout kills the whole tree
        detached: true,
      });
      const pid = child.pid;
      if (pid !== undefined) this.#children.add(pid);
      const keep = (acc: string, chunk: Buffer): string => (acc.length >= max ? acc : (acc + chunk.toString('utf8')).slice(0, max));
      child.stdout.on('data', (b: Buffer) => (stdout = keep(stdout, b)));
      child.stderr.on('data', (b: Buffer) => (stderr = keep(stderr, b)));
      let killTimer: NodeJS.Timeout | undefined;
      const timer = setTimeout(() => {
        timedOut = true;
        if (pid !== undefined) {
          killGroup(pid, 'SIGTERM');
          killTimer = setTimeout(() => killGroup(pid, 'SIGKILL'), KILL_GRACE_MS);
          killTimer.unref();
        }
      }, Math.max(1, timeoutMs));
      const finish = (r: Omit<RunResult, 'stdout' | 'stderr' | 'ms' | 'timedOut'>): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (pid !== undefined) {
          this.#children.delete(pid);
          // the shell may be gone while a background child still holds the group
          if (timedOut) killGroup(pid, 'SIGKILL');
        }
        if (killTimer) clearTimeout(killTimer);
        resolve({ ...r, ok: r.ok && !timedOut, timedOut, stdout, stderr, ms: Date.now() - started });
      };
      child.on('error', (e) => finish({ ok: false, code: null, signal: null, error: e.message }));
      child.on('close', (code, signal) => finish({ ok: code === 0, code, signal }));
      // 'close' waits for the pipes; a background child (`cmd &`) may hold them open long after
      // the shell exited. The exit status is what fail2ban judges by, so stop waiting shortly.
      child.on('exit', (code, signal) => {
        setTimeout(() => finish({ ok: code === 0, code, signal }), 200).unref();
      });
    });
  }
}

function killGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // already gone
  }
}
