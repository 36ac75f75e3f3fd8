/**
 * How a jail's fail2ban `action` list maps onto Aegis enforcers (docs/enforcers.md, "Action
 * mapping"). Pure: the composition root calls it per jail with the chosen enforcer kind.
 *
 * - `xdp` / `nftables`: actions that block traffic on this host (iptables*, nftables*,
 *   firewallcmd*, ufw, shorewall*, route, hostsdeny, pf/ipfw/npf/ipfilter…) are served by the
 *   kernel enforcer instead of running their commands; everything else (mail, sendmail, abuse
 *   reporting, cloudflare, custom scripts) still runs as a command action.
 * - `action`: every action runs as a command, firewall ones included (fail2ban's behaviour).
 * - `log`: nothing runs; decide and record only.
 * A jail without any action at all (an Aegis-native jail) is kernel-banned under xdp/nftables:
 * otherwise such a jail would detect and never block.
 * Python actions (`name.py`) cannot run as commands; they are listed in `skipped`.
 */
import type { ActionSpec, EnforcerKind, ResolvedJail } from '../config/types.js';

export interface JailActionPlan {
  /** the kernel enforcer (xdp / nftables) should hold this jail's bans */
  readonly kernelBan: boolean;
  /** actions the action enforcer runs for this jail */
  readonly commandActions: ActionSpec[];
  /** actions neither served nor run, with why (logged once by the caller) */
  readonly skipped: Array<{ readonly spec: ActionSpec; readonly reason: string }>;
}

/**
 * Stock action.d names whose job is to block the address on this host. Prefix match on the
 * action name, so `iptables-multiport`, `nftables-allports`, `firewallcmd-ipset` all count.
 */
const FIREWALL_PREFIXES: readonly string[] = [
  'iptables',
  'ip6tables',
  'nftables',
  'firewallcmd',
  'ufw',
  'shorewall',
  'apf',
  'route',
  'hostsdeny',
  'symbiosis-blacklist',
  'pf',
  'ipfw',
  'bsd-ipfw',
  'osx-ipfw',
  'osx-afctl',
  'npf',
  'ipfilter',
];

/** Is `name` (an action.d name, without `.conf`) a host firewall ban action? */
export function isFirewallAction(name: string): boolean {
  const n = name.trim().toLowerCase().replace(/\.(conf|local)$/, '');
  return FIREWALL_PREFIXES.some((p) => n === p || n.startsWith(`${p}-`) || n.startsWith(`${p}_`) || n.startsWith(`${p}[`));
}

export function planJailActions(jail: ResolvedJail, enforcer: EnforcerKind): JailActionPlan {
  const skipped: Array<{ spec: ActionSpec; reason: string }> = [];
  const runnable: ActionSpec[] = [];
  for (const spec of jail.actions) {
    if (spec.name.endsWith('.py')) skipped.push({ spec, reason: 'Python actions are not supported; only action.d command actions run' });
    else runnable.push(spec);
  }
  switch (enforcer) {
    case 'log':
      return { kernelBan: false, commandActions: [], skipped };
    case 'action':
      return { kernelBan: false, commandActions: runnable, skipped };
    case 'xdp':
    case 'nftables': {
      const firewall = runnable.filter((a) => isFirewallAction(a.name));
      const others = runnable.filter((a) => !isFirewallAction(a.name));
      const kernelBan = jail.actions.length === 0 || firewall.length > 0;
      return { kernelBan, commandActions: others, skipped };
    }
  }
}
