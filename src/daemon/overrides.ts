/** aegisd flags win over aegis.conf (SPEC "aegisd flags"). */
import type { EnforcerKind, LogLevel, ResolvedConfig } from '../config/types.js';

export interface DaemonOverrides {
  readonly socket?: string;
  readonly stateDir?: string;
  readonly logLevel?: LogLevel;
  readonly metrics?: boolean;
  readonly metricsBind?: string;
  readonly metricsPort?: number;
  readonly enforcer?: EnforcerKind;
  readonly interfaces?: readonly string[];
  readonly dryRun?: boolean;
}

export function applyOverrides(config: ResolvedConfig, o: DaemonOverrides): ResolvedConfig {
  const daemon = {
    ...config.daemon,
    ...(o.socket !== undefined ? { socket: o.socket } : {}),
    ...(o.stateDir !== undefined ? { stateDir: o.stateDir } : {}),
    ...(o.logLevel !== undefined ? { logLevel: o.logLevel } : {}),
    ...(o.enforcer !== undefined ? { enforcer: o.enforcer } : {}),
    ...(o.interfaces !== undefined && o.interfaces.length > 0 ? { interfaces: o.interfaces } : {}),
    ...(o.dryRun !== undefined ? { dryRun: o.dryRun } : {}),
  };
  const metrics = {
    ...config.metrics,
    ...(o.metrics !== undefined ? { enabled: o.metrics } : {}),
    ...(o.metricsBind !== undefined ? { bind: o.metricsBind } : {}),
    ...(o.metricsPort !== undefined ? { port: o.metricsPort } : {}),
  };
  return Object.freeze({ ...config, daemon: Object.freeze(daemon), metrics: Object.freeze(metrics) });
}
