/**
 * withCommandActions: a real nftables enforcer (inside a namespace this test creates) plus the
 * command actions that still run beside it, with the real action.d reader.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActionSpec, ResolvedConfig, ResolvedJail } from '../../../src/config/types.js';
import { withCommandActions } from '../../../src/enforce/action-compose.js';
import type { EnforcedBan } from '../../../src/enforce/enforcer.js';
import { createNftablesEnforcer } from '../../../src/enforce/nftables.js';
import { testJail } from '../../helpers/jail.js';

const NS = `aegis-cmp-${process.pid}`;
const can = process.getuid?.() === 0 && spawnSync('nft', ['--version']).status === 0 && spawnSync('ip', ['-V']).status === 0;
if (!can) console.log('skipped action-compose tests: need root, nft and ip');
const dir = mkdtempSync(join(tmpdir(), `aegis-cmp-${process.pid}-`));
const out = join(dir, 'mail.out');

beforeAll(() => {
  if (can) execFileSync('ip', ['netns', 'add', NS]);
  mkdirSync(join(dir, 'action.d'));
  writeFileSync(join(dir, 'action.d', 'notify.conf'), `[Definition]\nactionban = echo "mail <name> <ip>" >> ${out}\nactionunban = echo "unmail <name> <ip>" >> ${out}\n`);
});
afterAll(() => {
  if (can) spawnSync('ip', ['netns', 'del', NS]);
  rmSync(dir, { recursive: true, force: true });
});

function jail(name: string, actions: ActionSpec[]): ResolvedJail {
  return testJail({ name, actions, backend: 'polling', logencoding: 'utf-8', maxretry: 3, usedns: 'no', origin: { file: join(dir, 'jail.local'), line: 1 } });
}
function ban(j: string, ip: string): EnforcedBan {
  const now = Math.floor(Date.now() / 1000);
  return { jail: j, network: ip, prefix: 32, family: 4, ip, since: now, expires: now + 600, bantime: 600, banCount: 1, fields: {} };
}
const set = (): string => execFileSync('ip', ['netns', 'exec', NS, 'nft', 'list', 'set', 'inet', 'aegis', 'ban4'], { encoding: 'utf8' });
const mails = (): string[] => (existsSync(out) ? readFileSync(out, 'utf8').trim().split('\n') : []);

describe.skipIf(!can)('kernel enforcer with command actions beside it', () => {
  it('kernel-bans firewall jails, runs mail actions for every jail, and skips the kernel for mail-only jails', async () => {
    const jails = [
      jail('sshd', [{ name: 'iptables-multiport', params: { port: 'ssh' } }, { name: 'notify', params: {} }]),
      jail('report', [{ name: 'notify', params: {} }]),
    ];
    const config: ResolvedConfig = {
      configDir: dir,
      daemon: { socket: '', socketMode: 0o600, socketGroup: null, stateDir: '', logLevel: 'info', enforcer: 'nftables', interfaces: [], dryRun: false },
      metrics: { enabled: false, bind: '127.0.0.1', port: 0, tokenFile: null, allow: [], tlsCert: null, tlsKey: null, rateLimit: null },
      xdp: { pinPath: '', maxEntries: 1, keepAttached: false, mode: 'auto', rateLimit: { enabled: false, pps: 0, burst: 0 } },
      jails,
    };
    const e = withCommandActions(createNftablesEnforcer({ nft: ['ip', 'netns', 'exec', NS, 'nft'] }), { configDir: dir });
    expect(e.kind).toBe('nftables');
    await e.start({ config, jails, allow: [], log: pino({ level: 'silent' }) });
    await e.ban([ban('sshd', '198.18.0.1'), ban('report', '198.18.0.2')]);
    expect(set()).toContain('198.18.0.1');
    expect(set()).not.toContain('198.18.0.2');
    expect(e.describe()).toMatchObject({ kind: 'nftables', commandActions: { jails: { sshd: ['notify'], report: ['notify'] } } });
    await e.unban([ban('sshd', '198.18.0.1')]);
    await e.stop(); // waits for the background commands
    // stop: an action without actionflush unbans what it still holds, as fail2ban does
    expect(mails().sort()).toEqual(['mail report 198.18.0.2', 'mail sshd 198.18.0.1', 'unmail report 198.18.0.2', 'unmail sshd 198.18.0.1']);
    expect(spawnSync('ip', ['netns', 'exec', NS, 'nft', 'list', 'table', 'inet', 'aegis']).status).not.toBe(0);
  });
});
