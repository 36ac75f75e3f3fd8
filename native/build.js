// Builds, during `npm install`, the line scanner addon (native/scan: needs make, g++, node-gyp)
// and then bpf/aegis.bpf.o with the XDP addon (native/: also clang and libbpf-dev). Both are
// optional: a missing toolchain prints one line saying how to get it and `npm install` still
// succeeds — the engine then scans in JavaScript, and aegisd falls back from XDP as the SPEC says.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const HOW = 'apt-get install clang-14 llvm-14 libbpf-dev libelf-dev zlib1g-dev pkg-config make g++, then npm rebuild aegis (or npm install)';
const verbose = process.env.V === '1';

class Skip extends Error {}

function skip(why) {
  throw new Skip(why);
}

function has(cmd, args = ['--version']) {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

/** node-gyp: the copy npm ships (npm sets npm_config_node_gyp), else one on PATH; null if none */
function findGyp() {
  const gyp = process.env.npm_config_node_gyp;
  if (gyp && existsSync(gyp)) return gyp;
  try {
    const globalRoot = execFileSync('npm', ['root', '-g'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const cand = join(globalRoot, 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    return existsSync(cand) ? cand : null;
  } catch {
    return null;
  }
}

/** node-gyp rebuild in `dir`; throws Skip with the compiler's last error line */
function gypBuild(dir, what) {
  if (!has('make') || !has('g++')) skip('make/g++ not found');
  const gyp = findGyp();
  if (!gyp) skip('node-gyp not found');
  try {
    createRequire(import.meta.url)('node-addon-api');
  } catch {
    skip('node-addon-api not installed');
  }
  const args = [gyp, 'rebuild', '--directory', dir];
  // Offline machines: use the headers installed with node instead of downloading them.
  const prefix = resolve(dirname(process.execPath), '..');
  if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
  const gypRun = spawnSync(process.execPath, args, { cwd: root, stdio: verbose ? 'inherit' : 'pipe', encoding: 'utf8' });
  if (gypRun.status !== 0) {
    const tail = `${gypRun.stderr ?? ''}${gypRun.stdout ?? ''}`.trim().split('\n').filter((l) => /error/i.test(l)).slice(-1)[0] ?? 'see V=1 npm rebuild';
    skip(`${what} build failed: ${tail.trim()}`);
  }
}

function buildScan() {
  if (process.platform !== 'linux') skip('built on Linux only');
  gypBuild(join(root, 'native', 'scan'), 'native/scan');
  if (verbose) console.log('aegis: line scanner addon built');
}

function buildXdp() {
  if (process.platform !== 'linux') skip('XDP needs Linux');
  if (!has('clang-14') && !has('clang')) skip('clang not found');
  if (!has('pkg-config', ['--exists', 'libbpf'])) skip('libbpf-dev not found');
  const quiet = { cwd: root, stdio: verbose ? 'inherit' : 'pipe', encoding: 'utf8' };
  const make = spawnSync('make', ['-C', 'bpf', verbose ? 'V=1' : 'V=0'], quiet);
  if (make.status !== 0) skip(`bpf/ build failed: ${(make.stderr || '').trim().split('\n').slice(-1)[0] ?? ''}`);
  gypBuild(join(root, 'native'), 'native/');
  if (verbose) console.log('aegis: XDP program and addon built');
}

/** run one optional part; never fail `npm install` over it */
function attempt(build, notBuilt) {
  try {
    build();
  } catch (e) {
    const why = e instanceof Skip ? e.message : `build error: ${e && e.message ? e.message.split('\n')[0] : e}`;
    console.log(`aegis: ${notBuilt} (${why})`);
  }
}

attempt(buildScan, 'native line scanner not built, matching scans in JavaScript (slower); to get it: apt-get install make g++, then npm rebuild aegis');
attempt(buildXdp, `XDP enforcement not built; to get it: ${HOW}`);
