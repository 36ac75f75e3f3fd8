import { openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { createLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics/catalog.js';
import { Events } from '../../src/events.js';

/** Real Events (pino + prom-client) writing log lines to a file the test can read. */
export function testEvents(dir: string) {
  const file = join(dir, 'aegisd.log');
  const log = createLogger({ level: 'debug', destination: openSync(file, 'a'), journal: false });
  const registry = new Registry();
  const metrics = createMetrics(registry, { version: 'test' });
  return {
    events: new Events(log, metrics),
    registry,
    metrics,
    logLines: (): Array<Record<string, unknown>> =>
      readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
