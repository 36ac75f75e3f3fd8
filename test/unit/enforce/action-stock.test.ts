/**
 * Every stock fail2ban action (Debian's /etc/fail2ban/action.d), read with the real action.d
 * reader and rendered for an IPv4 and an IPv6 ban whose log captures are hostile: no command is
 * refused, none contains the hostile text, and every one is valid sh (`sh -n`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ActionCommand, ResolvedJail } from '../../../src/config/types.js';
import { loadAction } from '../../../src/config/actions.js';
import { renderCommand } from '../../../src/enforce/action-template.js';
import { dynamicTags } from '../../../src/enforce/action-instance.js';
import type { EnforcedBan } from '../../../src/enforce/enforcer.js';
import { testJail } from '../../helpers/jail.js';

const DIR = '/etc/fail2ban';
const have = existsSync(`${DIR}/action.d`);
if (!have) console.log('skipped stock action test: /etc/fail2ban missing (apt-get install fail2ban)');
const HOSTILE = 'x; touch /tmp/pwned-stock $(id) `id`';

const jail: ResolvedJail = testJail({ logpath: ['/var/log/auth.log'], filter: { ...testJail().filter, name: 'sshd', origin: { file: 'x', section: 'sshd' } } });

const COMMANDS: ActionCommand[] = ['actionstart', 'actionstop', 'actioncheck', 'actionban', 'actionunban', 'actionflush'];
// fail2ban's jail.conf passes these to every banaction; mail actions need dest/sender
const PARAMS = { port: 'ssh', protocol: 'tcp', chain: 'INPUT', dest: 'root@localhost', sender: 'fail2ban@localhost', sendername: 'Fail2Ban', mta: 'sendmail', logpath: '/var/log/auth.log' };

describe.skipIf(!have)('stock action.d files render safely', () => {
  const names = have ? readdirSync(`${DIR}/action.d`).filter((f) => f.endsWith('.conf')).map((f) => f.slice(0, -5)) : [];
  it('has the stock actions to test', () => expect(names.length).toBeGreaterThan(50));
  for (const name of names) {
    it(`${name}: every command is valid sh with hostile captures passed as data`, () => {
      const { action } = loadAction(DIR, jail, { name, params: PARAMS });
      if (action === null) return; // *-common.conf helpers are not actions on their own
      for (const family of [4, 6] as const) {
        const ip = family === 4 ? '198.18.0.7' : '2001:db8::7';
        const ban: EnforcedBan = { jail: 'sshd', network: ip, prefix: family === 4 ? 32 : 128, family, ip, since: 1, expires: 601, bantime: 600, banCount: 1, fields: { user: HOSTILE }, matches: [HOSTILE], failures: 5 };
        const statics: Record<string, string> = { name: 'sshd', ...action.commands, ...action.tags, ...(family === 6 ? action.tagsInet6 : {}) };
        for (const op of COMMANDS) {
          if (!statics[op]) continue;
          const r = renderCommand({ command: `<${op}>`, statics, dynamic: dynamicTags(ban) });
          expect(r.ok, `${name} ${op}: ${r.ok ? '' : r.error}`).toBe(true);
          if (!r.ok) continue;
          expect(r.value.script).not.toContain('pwned-stock');
          const syntax = spawnSync('/bin/sh', ['-n', '-c', r.value.script], { encoding: 'utf8' });
          expect(syntax.status, `${name} ${op} v${family}: ${syntax.stderr}\n${r.value.script}`).toBe(0);
        }
      }
    });
  }
});
