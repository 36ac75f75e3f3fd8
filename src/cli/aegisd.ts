#!/usr/bin/env node
/**
 * aegisd: the daemon, in the foreground (systemd supervises it).
 * Exit codes (SPEC): 0 clean stop, 2 configuration or usage error, 1 any other failure to run.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { Daemon, ConfigRejected } from '../daemon/daemon.js';
import { AegisError, errorMessage } from '../errors.js';
import { ExitCode } from './exit-codes.js';
import type { EnforcerKind, LogLevel } from '../config/types.js';
import type { DaemonOverrides } from '../daemon/overrides.js';

function die(code: number, message: string): never {
  process.stderr.write(`aegisd: ${message}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  const argv = await yargs(hideBin(process.argv))
    .scriptName('aegisd')
    .usage('$0 [options]\n\nThe Aegis daemon: reads fail2ban-compatible jails, tails logs, bans offenders.')
    .option('config-dir', { type: 'string', default: '/etc/aegis', describe: 'configuration directory' })
    .option('socket', { type: 'string', describe: 'control socket path (default /run/aegis/aegis.sock)' })
    .option('state-dir', { type: 'string', describe: 'state directory (default /var/lib/aegis)' })
    .option('log-level', { type: 'string', choices: ['trace', 'debug', 'info', 'warn', 'error'] })
    .option('metrics', { type: 'boolean', describe: 'serve Prometheus metrics (--no-metrics to disable)' })
    .option('metrics-bind', { type: 'string', describe: 'metrics listen address (default 127.0.0.1)' })
    .option('metrics-port', { type: 'number', describe: 'metrics port (default 9190)' })
    .option('enforcer', { type: 'string', choices: ['xdp', 'nftables', 'action', 'log'] })
    .option('interface', { type: 'string', array: true, describe: 'XDP attach point (repeatable)' })
    .option('dry-run', { type: 'boolean', describe: 'match and count, never enforce' })
    .strict()
    .version(false)
    .help()
    .fail((msg, err) => die(ExitCode.USAGE, msg || (err ? err.message : 'usage error')))
    .parseAsync();

  if (argv['metrics-port'] !== undefined && (!Number.isInteger(argv['metrics-port']) || argv['metrics-port'] < 0 || argv['metrics-port'] > 65535)) {
    die(ExitCode.USAGE, `--metrics-port: expected a port number, got ${String(argv['metrics-port'])}`);
  }
  const overrides: DaemonOverrides = {
    ...(argv.socket !== undefined ? { socket: argv.socket } : {}),
    ...(argv['state-dir'] !== undefined ? { stateDir: argv['state-dir'] } : {}),
    ...(argv['log-level'] !== undefined ? { logLevel: argv['log-level'] as LogLevel } : {}),
    ...(argv.metrics !== undefined ? { metrics: argv.metrics } : {}),
    ...(argv['metrics-bind'] !== undefined ? { metricsBind: argv['metrics-bind'] } : {}),
    ...(argv['metrics-port'] !== undefined ? { metricsPort: argv['metrics-port'] } : {}),
    ...(argv.enforcer !== undefined ? { enforcer: argv.enforcer as EnforcerKind } : {}),
    ...(argv.interface !== undefined ? { interfaces: argv.interface } : {}),
    ...(argv['dry-run'] !== undefined ? { dryRun: argv['dry-run'] } : {}),
  };

  const daemon = new Daemon(argv['config-dir'], overrides);
  try {
    await daemon.start();
  } catch (e) {
    if (e instanceof ConfigRejected) {
      for (const line of e.message.split('\n')) process.stderr.write(`aegisd: ${line}\n`);
      await daemon.stop().catch(() => undefined);
      process.exit(ExitCode.USAGE);
    }
    const hint = e instanceof AegisError && e.hint ? `; ${e.hint}` : '';
    process.stderr.write(`aegisd: ${errorMessage(e)}${hint}\n`);
    await daemon.stop().catch(() => undefined);
    process.exit(e instanceof AegisError && e.code === 'AEGIS_ERR_CONFIG_VALUE' ? ExitCode.USAGE : ExitCode.NOT_APPLIED);
  }

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    daemon.log.info({ event: 'signal', signal }, `${signal} received, stopping`);
    daemon.stop().then(
      () => process.exit(ExitCode.OK),
      (e: unknown) => {
        process.stderr.write(`aegisd: stop failed: ${errorMessage(e)}\n`);
        process.exit(ExitCode.NOT_APPLIED);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    void daemon.reload().then((r) => {
      if (!r.ok) daemon.log.error({ event: 'reload_rejected' }, r.error.message);
    });
  });
}

main().catch((e: unknown) => {
  // a bug: one line and exit 1; systemd restarts us
  process.stderr.write(`aegisd: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(ExitCode.NOT_APPLIED);
});
