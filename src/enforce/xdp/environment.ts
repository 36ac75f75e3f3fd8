/**
 * The XDP enforcer's dealings with its environment: the bpf filesystem and turning native
 * (libbpf errno) failures into AegisErrors that say how to fix them.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { AegisError, ErrorCode, errorMessage } from '../../errors.js';
import { PERMISSION_HINT, type NativeError } from './native.js';

const BPF_FS_MAGIC = 0xcafe4a11;

/** Native errors → the AegisError the daemon knows how to report. */
export function asAegisError(e: unknown, what: string): AegisError {
  const ne = e as NativeError;
  const msg = `${what}: ${errorMessage(e)}`;
  if (ne?.code === 'EPERM' || ne?.code === 'EACCES') return new AegisError(ErrorCode.BPF_PERMISSION, msg, { hint: PERMISSION_HINT, cause: e });
  if (ne?.mapFull === true)
    return new AegisError(ErrorCode.BPF_MAP_FULL, msg, {
      hint: 'raise [xdp] max_entries; pinned maps keep their size, so remove the pins under [xdp] pin_path (bans are re-applied from state) and restart',
      cause: e,
    });
  let hint = 'run with AEGIS_LIBBPF_DEBUG=1 to see libbpf\'s log';
  if (ne?.code === 'ENODEV') hint = 'check --interface / [daemon] interfaces: the interface does not exist in this network namespace';
  else if (ne?.code === 'EBUSY') hint = 'another XDP program is attached; detach it (ip link set dev IFACE xdp off) or pick another interface';
  else if (ne?.code === 'EEXIST' || /pinned|reuse/i.test(msg)) hint = 'pinned maps from another layout: remove them under [xdp] pin_path and restart';
  return new AegisError(ErrorCode.BPF_LOAD, msg, { hint, cause: e });
}

/** Mount bpffs on /sys/fs/bpf when nothing is there, then create the pin folder. */
export function preparePinPath(pinPath: string): void {
  let dir = pinPath;
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  let isBpffs = false;
  try {
    isBpffs = statfsSync(dir).type === BPF_FS_MAGIC;
  } catch {
    isBpffs = false;
  }
  if (!isBpffs) {
    if (!pinPath.startsWith('/sys/fs/bpf')) {
      throw new AegisError(ErrorCode.BPF_LOAD, `[xdp] pin_path ${pinPath} is not on a bpf filesystem`, {
        hint: `mount one: mount -t bpf bpf ${dir}, or use the default /sys/fs/bpf/aegis`,
      });
    }
    try {
      execFileSync('mount', ['-t', 'bpf', 'bpf', '/sys/fs/bpf'], { stdio: 'pipe' });
    } catch (e) {
      throw new AegisError(ErrorCode.BPF_PERMISSION, `cannot mount bpffs on /sys/fs/bpf: ${errorMessage(e)}`, {
        hint: 'mount it before starting aegisd: mount -t bpf bpf /sys/fs/bpf',
        cause: e,
      });
    }
  }
  try {
    mkdirSync(pinPath, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new AegisError(ErrorCode.BPF_PERMISSION, `cannot create ${pinPath}: ${errorMessage(e)}`, { hint: PERMISSION_HINT, cause: e });
  }
}
