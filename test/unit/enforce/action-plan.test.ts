import { cpSync, existsSync, writeFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ActionSpec, ResolvedJail } from '../../../src/config/types.js';
import { resolveConfig } from '../../../src/config/resolve.js';
import { isFirewallAction, planJailActions } from '../../../src/enforce/action-plan.js';
import { testJail } from '../../helpers/jail.js';

function jail(actions: ActionSpec[]): ResolvedJail {
  return testJail({ actions, filter: { ...testJail().filter, name: 'sshd', origin: { file: 'x', section: 'sshd' } } });
}
const a = (name: string, params: Record<string, string> = {}): ActionSpec => ({ name, params });
const names = (l: readonly ActionSpec[]): string[] => l.map((x) => x.name);

describe('planJailActions', () => {
  it('recognises the host firewall actions fail2ban ships', () => {
    for (const n of ['iptables', 'iptables-multiport', 'iptables-allports', 'iptables-ipset-proto6', 'nftables', 'nftables-multiport', 'nftables-allports', 'firewallcmd-ipset', 'firewallcmd-rich-rules', 'ufw', 'shorewall', 'shorewall-ipset-proto6', 'route', 'hostsdeny', 'apf', 'pf', 'bsd-ipfw', 'npf'])
      expect(isFirewallAction(n), n).toBe(true);
    for (const n of ['mail', 'mail-whois', 'sendmail-whois-lines', 'abuseipdb', 'cloudflare', 'dshield', 'complain', 'dummy', 'my-webhook', 'nginx-block-map', 'pfsense-notify'])
      expect(isFirewallAction(n), n).toBe(false);
  });

  it('serves firewall actions from the kernel and still runs mail under xdp and nftables (%(action_mw)s)', () => {
    const j = jail([a('iptables-multiport', { port: 'ssh' }), a('mail-whois', { dest: 'root' })]);
    for (const kind of ['xdp', 'nftables'] as const) {
      const p = planJailActions(j, kind);
      expect(p.kernelBan).toBe(true);
      expect(names(p.commandActions)).toEqual(['mail-whois']);
    }
  });

  it('runs everything as commands under --enforcer action, and nothing under log', () => {
    const j = jail([a('nftables', { type: 'multiport' }), a('sendmail-whois')]);
    expect(planJailActions(j, 'action')).toMatchObject({ kernelBan: false });
    expect(names(planJailActions(j, 'action').commandActions)).toEqual(['nftables', 'sendmail-whois']);
    expect(planJailActions(j, 'log')).toMatchObject({ kernelBan: false, commandActions: [] });
  });

  it('does not kernel-ban a jail whose only action is a notification, as fail2ban would not block', () => {
    const p = planJailActions(jail([a('mail')]), 'xdp');
    expect(p.kernelBan).toBe(false);
    expect(names(p.commandActions)).toEqual(['mail']);
  });

  it('kernel-bans a jail with no action at all (an Aegis-native jail)', () => {
    expect(planJailActions(jail([]), 'nftables')).toMatchObject({ kernelBan: true, commandActions: [] });
  });

  it('lists Python actions as skipped', () => {
    const p = planJailActions(jail([a('iptables-multiport'), a('smtp.py', { dest: 'x' })]), 'xdp');
    expect(p.skipped.map((s) => s.spec.name)).toEqual(['smtp.py']);
    expect(p.commandActions).toEqual([]);
  });

  it('maps the stock Debian jails: action_, action_mw and action_mwl', () => {
    if (!existsSync('/etc/fail2ban/jail.conf')) return void console.log('skipped: /etc/fail2ban missing (apt-get install fail2ban)');
    const dir = mkdtempSync(join(tmpdir(), `aegis-plan-${process.pid}-`));
    try {
      cpSync('/etc/fail2ban', dir, { recursive: true });
      writeFileSync(
        join(dir, 'jail.local'),
        '[sshd]\nenabled = true\nlogpath = /dev/null\nbackend = polling\n\n' +
          '[nginx-http-auth]\nenabled = true\nlogpath = /dev/null\nbackend = polling\naction = %(action_mw)s\n\n' +
          '[postfix]\nenabled = true\nlogpath = /dev/null\nbackend = polling\naction = %(action_mwl)s\n',
      );
      const { config } = resolveConfig(dir);
      expect(config).not.toBeNull();
      const byName = new Map(config!.jails.filter((j) => j.enabled).map((j) => [j.name, j]));
      const sshd = planJailActions(byName.get('sshd')!, 'xdp');
      expect(sshd).toMatchObject({ kernelBan: true, commandActions: [] });
      const nginx = planJailActions(byName.get('nginx-http-auth')!, 'xdp');
      expect(nginx.kernelBan).toBe(true);
      expect(names(nginx.commandActions)).toEqual(['sendmail-whois']); // jail.conf: mta = sendmail
      const postfix = planJailActions(byName.get('postfix')!, 'nftables');
      expect(names(postfix.commandActions)).toEqual(['sendmail-whois-lines']);
      expect(names(planJailActions(byName.get('postfix')!, 'action').commandActions)).toEqual(['iptables-multiport', 'sendmail-whois-lines']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
