/**
 * Bad input is a value, never an exception: seeded random damage to real config files
 * (Debian's jail.conf, sshd/common filters, an action, aegis.conf) must always come back as
 * `{config, diagnostics}` from resolveConfig / loadFilter / loadAction — a throw here would be
 * a daemon crash on reload.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadAction } from '../../../src/config/actions.js';
import { loadFilter } from '../../../src/config/filters.js';
import { resolveConfig } from '../../../src/config/resolve.js';
import { rng } from '../../helpers/rng.js';

const ETC = '/etc/fail2ban';
const have = fs.existsSync(path.join(ETC, 'jail.conf'));
const root = fs.mkdtempSync(path.join(os.tmpdir(), `aegis-fuzz-${process.pid}-`));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const NASTY = ['%', '%(', ')s', '<', '>', '[', ']', '=', ':', '\n', '\n  ', ';', '#', '%(known/', '<known/', '?', '"', "'", '\\', '[INCLUDES]\nbefore = ', '[Init?family=inet6]\n', 'jsonfail = ', '\u0000', '%(x\ny)s', 'filter = a\n  b[k=', 'action = x[a="1\n2"]\n  y['];
function damage(text: string, r: () => number, edits: number): string {
  let s = text;
  for (let i = 0; i < edits; i++) {
    const pos = Math.floor(r() * (s.length + 1));
    const op = r();
    if (op < 0.4) s = s.slice(0, pos) + (NASTY[Math.floor(r() * NASTY.length)] ?? '') + s.slice(pos);
    else if (op < 0.7) s = s.slice(0, pos) + s.slice(pos + 1 + Math.floor(r() * 8));
    else {
      const from = Math.floor(r() * s.length);
      s = s.slice(0, pos) + s.slice(from, from + 1 + Math.floor(r() * 30)) + s.slice(pos);
    }
  }
  return s;
}

describe('config loading never throws on damaged input', () => {
  it.skipIf(!have)('120 damaged variants of a stock-based tree', () => {
    const base = {
      'jail.local': fs.readFileSync(path.join(ETC, 'jail.conf'), 'utf8').replace(/^\[sshd\]$/m, '[sshd]\nenabled = true\nmode = aggressive\nlogpath = /dev/null'),
      'filter.d/sshd.conf': fs.readFileSync(path.join(ETC, 'filter.d/sshd.conf'), 'utf8'),
      'filter.d/common.conf': fs.readFileSync(path.join(ETC, 'filter.d/common.conf'), 'utf8'),
      'action.d/iptables-multiport.conf': fs.readFileSync(path.join(ETC, 'action.d/iptables-multiport.conf'), 'utf8'),
      'action.d/iptables.conf': fs.readFileSync(path.join(ETC, 'action.d/iptables.conf'), 'utf8'),
      'paths-common.conf': fs.readFileSync(path.join(ETC, 'paths-common.conf'), 'utf8'),
      'paths-debian.conf': fs.readFileSync(path.join(ETC, 'paths-debian.conf'), 'utf8'),
      'aegis.conf': '[daemon]\nsocket = var/a.sock\nenforcer = action\n[metrics]\nport = 9190\nallow = 127.0.0.1\n[xdp]\nrate_limit = 100\n',
      'filter.d/api.conf': '[Definition]\njsonhost = ip\njsonfail = event=a|b status=400..499 path~^/x\njsonignore = user?\n',
    };
    const keys = Object.keys(base) as (keyof typeof base)[];
    let outcomes = 0;
    for (let seed = 1; seed <= 120; seed++) {
      const r = rng(seed);
      const dir = path.join(root, String(seed));
      for (const k of keys) {
        const text = r() < 0.35 ? damage(base[k], r, 1 + Math.floor(r() * 6)) : base[k];
        fs.mkdirSync(path.dirname(path.join(dir, k)), { recursive: true });
        fs.writeFileSync(path.join(dir, k), text);
      }
      try {
        const res = resolveConfig(dir);
        expect(res.config !== null || res.diagnostics.some((d) => d.severity === 'error')).toBe(true);
        for (const d of res.diagnostics) expect(d.message.includes('\n'), d.message).toBe(false);
        const jail = res.config?.jails.find((j) => j.enabled);
        if (jail) for (const a of jail.actions) loadAction(dir, jail, a);
        loadFilter(dir, 'sshd[mode=ddos]');
        loadFilter(dir, 'api');
        outcomes++;
      } catch (e) {
        throw new Error(`seed ${seed}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(outcomes).toBe(120);
  });
});
