/** Hand-built Ethernet frames for BPF_PROG_TEST_RUN. Checksums are irrelevant to XDP. */
import { parseAddress } from '../../../src/net/address.js';

function addr(ip: string): Uint8Array {
  const a = parseAddress(ip);
  if (!a) throw new Error(`bad test address ${ip}`);
  return a.bytes;
}

export interface FrameOptions {
  readonly vlan?: number;
  /** IPv4 fragment offset in 8-byte units (non-zero = not the first fragment) */
  readonly fragOffset?: number;
}

function ethernet(etherType: number, vlan: number | undefined): Buffer {
  const h = Buffer.alloc(vlan === undefined ? 14 : 18);
  Buffer.from([0x02, 0, 0, 0, 0, 1]).copy(h, 0);
  Buffer.from([0x02, 0, 0, 0, 0, 2]).copy(h, 6);
  if (vlan === undefined) {
    h.writeUInt16BE(etherType, 12);
  } else {
    h.writeUInt16BE(0x8100, 12);
    h.writeUInt16BE(vlan, 14);
    h.writeUInt16BE(etherType, 16);
  }
  return h;
}

function udp(): Buffer {
  const u = Buffer.alloc(8 + 16);
  u.writeUInt16BE(40000, 0);
  u.writeUInt16BE(5353, 2);
  u.writeUInt16BE(u.length, 4);
  return u;
}

export function udp4(src: string, dst: string, o: FrameOptions = {}): Buffer {
  const payload = udp();
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + payload.length, 2);
  ip.writeUInt16BE(o.fragOffset ?? 0, 6);
  ip[8] = 64;
  ip[9] = 17;
  ip.set(addr(src), 12);
  ip.set(addr(dst), 16);
  return Buffer.concat([ethernet(0x0800, o.vlan), ip, payload]);
}

export function udp6(src: string, dst: string, o: FrameOptions = {}): Buffer {
  const payload = udp();
  const ip = Buffer.alloc(40);
  ip[0] = 0x60;
  ip.writeUInt16BE(payload.length, 4);
  ip[6] = 17;
  ip[7] = 64;
  ip.set(addr(src), 8);
  ip.set(addr(dst), 24);
  return Buffer.concat([ethernet(0x86dd, o.vlan), ip, payload]);
}

/** ARP who-has, sender protocol address `src` (a banned address must not matter) */
export function arp(src: string, dst: string): Buffer {
  const a = Buffer.alloc(28);
  a.writeUInt16BE(1, 0);
  a.writeUInt16BE(0x0800, 2);
  a[4] = 6;
  a[5] = 4;
  a.writeUInt16BE(1, 6);
  a.set(addr(src), 14);
  a.set(addr(dst), 24);
  return Buffer.concat([ethernet(0x0806, undefined), a]);
}

export const XDP_DROP = 1;
export const XDP_PASS = 2;
