/**
 * Pure text for `nft -f -` and parsing of `nft -j list table`. The layout (docs/enforcers.md):
 *
 *   table inet aegis {
 *     set allow4 { type ipv4_addr; flags interval; auto-merge; }      ctx.allow, checked first
 *     set allow6 { type ipv6_addr; flags interval; auto-merge; }
 *     set ban4    { type ipv4_addr; flags timeout; }                  banned addresses (hash)
 *     set ban6    { type ipv6_addr; flags timeout; }
 *     set ban4net { type ipv4_addr; flags interval, timeout; }        banned prefixes (intervals)
 *     set ban6net { type ipv6_addr; flags interval, timeout; }
 *     chain filter { type filter hook prerouting priority -300; policy accept;
 *       ip saddr @allow4 accept;  ip6 saddr @allow6 accept
 *       ip saddr @ban4 counter drop;  ip saddr @ban4net counter drop
 *       ip6 saddr @ban6 counter drop;  ip6 saddr @ban6net counter drop }
 *   }
 *
 * Addresses and prefixes live in separate sets because nft 1.0.6 deletes from an interval set
 * in quadratic time (10 000 deletions: 69 s; from a hash set: 50 000 in 0.75 s), and so that an
 * address banned inside a banned prefix never collides with it (interval sets refuse overlaps).
 * Every script is one nft transaction: it applies whole or not at all.
 */
import { parseAddress, parseCidr, type Cidr, type Family } from '../net/address.js';

export interface NftLayout {
  readonly family: 'inet';
  readonly table: string;
  readonly hook: 'prerouting' | 'input';
  readonly priority: number;
}

/** An element as the kernel should hold it. `expires` epoch seconds, null = no timeout. */
export interface NftElement {
  readonly key: string;
  readonly family: Family;
  /** `198.18.0.7` or `198.18.1.0/24` */
  readonly text: string;
  readonly expires: number | null;
}

/** An element as read back; `key` null for a range the daemon never writes. */
export interface KernelElement {
  readonly key: string | null;
  readonly family: Family;
  readonly text: string;
  readonly expires: number | null;
}

export const SET_BAN: Readonly<Record<Family, string>> = { 4: 'ban4', 6: 'ban6' };
export const SET_NET: Readonly<Record<Family, string>> = { 4: 'ban4net', 6: 'ban6net' };
const SET_ALLOW: Readonly<Record<Family, string>> = { 4: 'allow4', 6: 'allow6' };
const TYPE: Readonly<Record<Family, string>> = { 4: 'ipv4_addr', 6: 'ipv6_addr' };
/** elements per `add element` statement; keeps single lines reasonable in huge bursts */
const CHUNK = 2000;

export function cidrKey(c: Pick<Cidr, 'network' | 'prefix'>): string {
  return `${c.network}/${c.prefix}`;
}

export function elementText(c: Pick<Cidr, 'network' | 'prefix' | 'family'>): string {
  return c.prefix === (c.family === 4 ? 32 : 128) ? c.network : `${c.network}/${c.prefix}`;
}

/**
 * Table, sets and chain, idempotent: existing ban sets keep their elements (a restarted daemon
 * adopts them without a gap); the allow sets and the chain's rules are rewritten.
 */
export function setupScript(l: NftLayout, allow: readonly Cidr[]): string {
  const t = `${l.family} ${l.table}`;
  const lines = [`add table ${t}`];
  for (const f of [4, 6] as const) {
    lines.push(`add set ${t} ${SET_BAN[f]} { type ${TYPE[f]}; flags timeout; }`);
    lines.push(`add set ${t} ${SET_NET[f]} { type ${TYPE[f]}; flags interval, timeout; }`);
    lines.push(`add set ${t} ${SET_ALLOW[f]} { type ${TYPE[f]}; flags interval; auto-merge; }`);
    lines.push(`flush set ${t} ${SET_ALLOW[f]}`);
    const mine = allow.filter((c) => c.family === f).map(elementText);
    if (mine.length > 0) lines.push(`add element ${t} ${SET_ALLOW[f]} { ${mine.join(', ')} }`);
  }
  lines.push(`add chain ${t} filter { type filter hook ${l.hook} priority ${l.priority}; policy accept; }`);
  lines.push(`flush chain ${t} filter`);
  lines.push(`add rule ${t} filter ip saddr @${SET_ALLOW[4]} accept`);
  lines.push(`add rule ${t} filter ip6 saddr @${SET_ALLOW[6]} accept`);
  lines.push(`add rule ${t} filter ip saddr @${SET_BAN[4]} counter drop`);
  lines.push(`add rule ${t} filter ip saddr @${SET_NET[4]} counter drop`);
  lines.push(`add rule ${t} filter ip6 saddr @${SET_BAN[6]} counter drop`);
  lines.push(`add rule ${t} filter ip6 saddr @${SET_NET[6]} counter drop`);
  return lines.join('\n') + '\n';
}

/** `add table` first so deleting a table that is not there is not an error. */
export function teardownScript(l: NftLayout): string {
  return `add table ${l.family} ${l.table}\ndelete table ${l.family} ${l.table}\n`;
}

/**
 * Element changes in one transaction. Removals come before additions: a /24 replaced by the
 * /32s it covered must be gone before they go in (interval sets refuse overlaps).
 *
 * A plain `delete` of an element the kernel has already expired fails the whole transaction.
 * For removals in `ensure` (elements at or past their expiry) the script writes `add` then
 * `delete`: `add` re-creates a just-expired element (a no-op if it is still there), so the
 * `delete` always finds it. nft 1.0.6 keeps the re-added element in its overlap check for the
 * rest of the batch, so the caller must not use `ensure` for an element that overlaps an
 * addition in the same batch.
 */
export function elementScript(
  l: NftLayout,
  remove: readonly KernelElement[],
  add: readonly NftElement[],
  now: number,
  ensure: ReadonlySet<string> = new Set(),
): string {
  const t = `${l.family} ${l.table}`;
  const lines: string[] = [];
  for (const [f, net] of SETS) {
    const set = net ? SET_NET[f] : SET_BAN[f];
    const mine = remove.filter((e) => e.family === f && isNetElement(e) === net);
    const sure = mine.filter((e) => e.key !== null && ensure.has(e.key)).map((e) => e.text);
    const plain = mine.filter((e) => e.key === null || !ensure.has(e.key)).map((e) => e.text);
    for (let i = 0; i < sure.length; i += CHUNK) {
      const part = sure.slice(i, i + CHUNK).join(', ');
      lines.push(`add element ${t} ${set} { ${part} }`);
      lines.push(`delete element ${t} ${set} { ${part} }`);
    }
    for (let i = 0; i < plain.length; i += CHUNK) lines.push(`delete element ${t} ${set} { ${plain.slice(i, i + CHUNK).join(', ')} }`);
  }
  for (const [f, net] of SETS) {
    const set = net ? SET_NET[f] : SET_BAN[f];
    const items: string[] = [];
    for (const e of add) {
      if (e.family !== f || isNetElement(e) !== net) continue;
      if (e.expires === null) items.push(e.text);
      else {
        const secs = Math.ceil(e.expires - now);
        if (secs > 0) items.push(`${e.text} timeout ${secs}s`);
      }
    }
    for (let i = 0; i < items.length; i += CHUNK) lines.push(`add element ${t} ${set} { ${items.slice(i, i + CHUNK).join(', ')} }`);
  }
  return lines.length === 0 ? '' : lines.join('\n') + '\n';
}

const SETS: ReadonlyArray<readonly [Family, boolean]> = [
  [4, false],
  [4, true],
  [6, false],
  [6, true],
];

/** Does this element belong in a prefix (interval) set? Ranges only ever live there. */
export function isNetElement(e: { readonly key: string | null; readonly family: Family }): boolean {
  if (e.key === null) return true;
  const slash = e.key.lastIndexOf('/');
  return Number(e.key.slice(slash + 1)) < (e.family === 4 ? 32 : 128);
}

export interface TableState {
  readonly bans: KernelElement[];
  readonly allow: string[];
  /** packets dropped by the two ban rules (their counters) */
  readonly dropped: number;
  readonly hasChain: boolean;
}

/** Parse `nft -j list table inet NAME`. */
export function parseTable(json: string, now: number): TableState {
  const doc = JSON.parse(json) as { nftables?: Array<Record<string, unknown>> };
  const bans: KernelElement[] = [];
  const allow: string[] = [];
  let dropped = 0;
  let hasChain = false;
  for (const item of doc.nftables ?? []) {
    const set = item['set'] as { name?: string; elem?: unknown[] } | undefined;
    if (set) {
      const fam: Family | null = /^(ban4|ban4net|allow4)$/.test(set.name ?? '') ? 4 : /^(ban6|ban6net|allow6)$/.test(set.name ?? '') ? 6 : null;
      if (fam === null) continue;
      for (const raw of set.elem ?? []) {
        const e = parseElem(raw, fam, now);
        if (!e) continue;
        if (set.name?.startsWith('ban')) bans.push(e);
        else allow.push(e.text);
      }
    }
    if (item['chain']) hasChain = true;
    const rule = item['rule'] as { expr?: Array<Record<string, unknown>> } | undefined;
    if (rule?.expr) {
      const counter = rule.expr.find((x) => x['counter'] !== undefined)?.['counter'] as { packets?: number } | undefined;
      if (counter?.packets !== undefined) dropped += counter.packets;
    }
  }
  return { bans, allow, dropped, hasChain };
}

function parseElem(raw: unknown, family: Family, now: number): KernelElement | null {
  let val: unknown = raw;
  let expires: number | null = null;
  if (raw !== null && typeof raw === 'object' && 'elem' in raw) {
    const e = (raw as { elem: { val: unknown; timeout?: number; expires?: number } }).elem;
    val = e.val;
    if (typeof e.expires === 'number') expires = now + e.expires;
    else if (typeof e.timeout === 'number') expires = now + e.timeout;
  }
  if (typeof val === 'string') {
    const a = parseAddress(val);
    if (!a) return null;
    const c = parseCidr(a.text)!;
    return { key: cidrKey(c), family, text: elementText(c), expires };
  }
  if (val !== null && typeof val === 'object' && 'prefix' in val) {
    const p = (val as { prefix: { addr: string; len: number } }).prefix;
    const c = parseCidr(`${p.addr}/${p.len}`);
    if (!c) return null;
    return { key: cidrKey(c), family, text: elementText(c), expires };
  }
  if (val !== null && typeof val === 'object' && 'range' in val) {
    const r = (val as { range: [string, string] }).range;
    return { key: null, family, text: `${r[0]}-${r[1]}`, expires };
  }
  return null;
}
