/**
 * sd_notify for `Type=notify`: tells systemd the daemon is ready (first config live) or stopping.
 *
 * Node cannot open an AF_UNIX datagram socket, so the message is sent by `systemd-notify`, run
 * as a child. systemd accepts it because the unit sets `NotifyAccess=all` (the sender is in the
 * service's cgroup) and because `systemd-notify` without `--no-block` waits until PID 1 has
 * processed the message (a barrier), so the child is still alive when PID 1 looks up its
 * cgroup — the race older recipes hit. Outside systemd (no NOTIFY_SOCKET) this does nothing.
 */
import { spawn } from 'node:child_process';
import type { Logger } from './log.js';

export interface NotifyOptions {
  readonly log?: Logger;
  /** default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** default `systemd-notify` from PATH */
  readonly command?: string;
}

export type NotifyResult = { sent: true } | { sent: false; reason: string };

/** Send `READY=1` (and a status line). Resolves when systemd has it, or why not. */
export function notifyReady(status = 'banning', options: NotifyOptions = {}): Promise<NotifyResult> {
  return notify(['--ready', `--status=${status}`], options);
}

/** Send `STOPPING=1` at the start of a clean shutdown. */
export function notifyStopping(options: NotifyOptions = {}): Promise<NotifyResult> {
  return notify(['STOPPING=1'], options);
}

/** Send `RELOADING=1` or a new status line. */
export function notifyStatus(status: string, options: NotifyOptions = {}): Promise<NotifyResult> {
  return notify([`--status=${status}`], options);
}

function notify(args: string[], options: NotifyOptions): Promise<NotifyResult> {
  const env = options.env ?? process.env;
  if (env.NOTIFY_SOCKET === undefined || env.NOTIFY_SOCKET === '') {
    return Promise.resolve({ sent: false, reason: 'not started by systemd (NOTIFY_SOCKET unset)' });
  }
  return new Promise((resolve) => {
    const done = (r: NotifyResult): void => {
      if (!r.sent) options.log?.warn({ component: 'systemd' }, `could not notify systemd: ${r.reason}`);
      resolve(r);
    };
    let child;
    try {
      child = spawn(options.command ?? 'systemd-notify', args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      done({ sent: false, reason: e instanceof Error ? e.message : String(e) });
      return;
    }
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => {
      if (stderr.length < 2000) stderr += d;
    });
    // The barrier waits for PID 1; never let a wedged notify hold start-up forever.
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      done({ sent: false, reason: `systemd-notify: ${e.message}` });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) done({ sent: true });
      else done({ sent: false, reason: `systemd-notify exited ${code ?? signal}: ${stderr.trim()}` });
    });
  });
}
