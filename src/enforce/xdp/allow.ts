/**
 * The allow tries: ignoreip of every jail, the host's own addresses (ctx.allow) and loopback.
 * The program consults them only when it is about to drop, and an allowed source is never
 * dropped, whatever the ban maps say. Hostnames (resolved elsewhere) are skipped here.
 */
import { LOOPBACK, parseCidr, type Cidr } from '../../net/address.js';
import { MAP, decodeKey, encodeKeys, entryId } from './codec.js';
import { asAegisError } from './environment.js';
import type { NativeProgram } from './native.js';

/** make the allow tries equal `allow` + loopback; returns the number of entries */
export async function syncAllowList(prog: NativeProgram, allow: readonly string[]): Promise<number> {
  const want = new Map<string, Cidr>();
  for (const c of LOOPBACK) want.set(entryId(c), c);
  for (const a of allow) {
    const c = parseCidr(a);
    if (c) want.set(entryId(c), c);
  }
  for (const map of [MAP.allowV4, MAP.allowV6] as const) {
    const family = map === MAP.allowV4 ? 4 : 6;
    const dump = await prog.dump(map);
    const have = new Map<string, Cidr>();
    for (let i = 0; i < dump.count; i++) {
      const c = decodeKey(map, dump.keys, i);
      have.set(entryId(c), c);
    }
    const add = [...want.entries()].filter(([id, c]) => c.family === family && !have.has(id)).map(([, c]) => c);
    const drop = [...have.entries()].filter(([id]) => !want.has(id)).map(([, c]) => c);
    try {
      if (drop.length > 0) await prog.remove(map, encodeKeys(map, drop));
      if (add.length > 0) await prog.update(map, encodeKeys(map, add), Buffer.alloc(add.length, 1));
    } catch (e) {
      throw asAegisError(e, `xdp: cannot fill the allow list ${map}`);
    }
  }
  return want.size;
}
