import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import https from 'node:https';
import tls from 'node:tls';
import { hasDaemon, startAegis, type AegisInstance } from '../unit/metrics/harness.js';

/**
 * The daemon's metrics endpoint end to end: token and TLS from aegis.conf, and a certificate
 * rotated by `aegis-ban reload` without dropping the listener; a bad certificate on reload keeps
 * the old one and the reload says so.
 */
const why = hasDaemon ? '' : 'dist/cli/aegisd.js not built';
if (why) console.log(`skipping 64-metrics-reload: ${why}`);

function get(port: number, path: string, ca: Buffer, token?: string): Promise<{ status: number; cn: string; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, path, ca, agent: false, headers: token ? { Authorization: `Bearer ${token}` } : {} },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, cn: String((res.socket as tls.TLSSocket).getPeerCertificate().subject?.CN), body, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe.skipIf(why !== '')('metrics endpoint of the daemon', () => {
  let aegis: AegisInstance;
  beforeAll(async () => {
    aegis = await startAegis();
  });
  afterAll(async () => {
    await aegis?.stop();
  });

  it('requires the token over TLS and reports both modules on', async () => {
    const ca = readFileSync(aegis.cert);
    const none = await get(aegis.metricsPort, '/metrics', ca);
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="aegis"');
    expect((await get(aegis.metricsPort, '/metrics', ca, 'wrong')).status).toBe(401);
    const ok = await get(aegis.metricsPort, '/metrics', ca, aegis.token);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatch(/^aegis_module_enabled\{module="metrics_auth"\} 1$/m);
    expect(ok.body).toMatch(/^aegis_module_enabled\{module="metrics_tls"\} 1$/m);
    expect((await get(aegis.metricsPort, '/health', ca, aegis.token)).body).toBe('ok\n');
    expect((await get(aegis.metricsPort, '/nope', ca, aegis.token)).status).toBe(404);
  });

  it('rotates the certificate on aegis-ban reload, keeps the listener and open connections, and keeps the old one when the new is bad', async () => {
    const oldCa = readFileSync(aegis.cert);
    const other = join(aegis.dir, 'next');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=aegis-e2e-rotated', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', `${other}.key`, '-out', `${other}.crt`,
    ], { stdio: 'ignore' });
    const ca = Buffer.concat([oldCa, readFileSync(`${other}.crt`)]);
    expect((await get(aegis.metricsPort, '/health', ca, aegis.token)).cn).toBe('aegis-e2e');

    const early = tls.connect({ host: '127.0.0.1', port: aegis.metricsPort, ca });
    await new Promise((r) => early.once('secureConnect', r));

    copyFileSync(`${other}.crt`, aegis.cert);
    copyFileSync(`${other}.key`, join(aegis.dir, 'tls.key'));
    const r = aegis.ctl(['reload']);
    expect(r.status, r.stderr).toBe(0);
    const after = await get(aegis.metricsPort, '/metrics', ca, aegis.token);
    expect([after.status, after.cn]).toEqual([200, 'aegis-e2e-rotated']);
    const earlyAnswer = await new Promise<string>((resolve) => {
      let d = '';
      early.on('data', (b) => (d += b.toString()));
      early.on('end', () => resolve(d));
      early.write(`GET /health HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${aegis.token}\r\nConnection: close\r\n\r\n`);
    });
    expect(earlyAnswer).toMatch(/^HTTP\/1.1 200/);

    writeFileSync(aegis.cert, 'not a certificate\n');
    const bad = aegis.ctl(['reload', '--json']);
    expect(bad.stdout + bad.stderr).toMatch(/tls_cert/);
    const still = await get(aegis.metricsPort, '/metrics', ca, aegis.token);
    expect([still.status, still.cn]).toEqual([200, 'aegis-e2e-rotated']);
    const ping = aegis.ctl(['ping']);
    expect(ping.status, ping.stderr + ping.stdout).toBe(0);
  });
});
