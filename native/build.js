// Builds bpf/aegis.bpf.o and the native addon during `npm install`.
// XDP is optional: when the toolchain is missing this prints one line saying how to get it and
// exits 0, so `npm install` succeeds and aegisd falls back as the SPEC says.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const HOW = 'apt-get install clang-14 llvm-14 libbpf-dev libelf-dev zlib1g-dev pkg-config make g++, then npm rebuild aegis (or npm install)';
const verbose = process.env.V === '1';

function skip(why) {
  console.log(`aegis: XDP enforcement not built (${why}); to get it: ${HOW}`);
  process.exit(0);
}

function has(cmd, args = ['--version']) {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

function main() {
  if (process.platform !== 'linux') skip('XDP needs Linux');
  if (!has('clang-14') && !has('clang')) skip('clang not found');
  if (!has('pkg-config', ['--exists', 'libbpf'])) skip('libbpf-dev not found');
  if (!has('make') || !has('g++')) skip('make/g++ not found');

  const quiet = { cwd: root, stdio: verbose ? 'inherit' : 'pipe', encoding: 'utf8' };
  const make = spawnSync('make', ['-C', 'bpf', verbose ? 'V=1' : 'V=0'], quiet);
  if (make.status !== 0) skip(`bpf/ build failed: ${(make.stderr || '').trim().split('\n').slice(-1)[0] ?? ''}`);

  // node-gyp: the copy npm ships (npm sets npm_config_node_gyp), else one on PATH.
  let gyp = process.env.npm_config_node_gyp;
  if (!gyp || !existsSync(gyp)) {
    try {
      const globalRoot = execFileSync('npm', ['root', '-g'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      const cand = join(globalRoot, 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
      gyp = existsSync(cand) ? cand : undefined;
    } catch {
      gyp = undefined;
    }
  }
  if (!gyp) skip('node-gyp not found');
  try {
    createRequire(import.meta.url)('node-addon-api');
  } catch {
    skip('node-addon-api not installed');
  }
  const args = [gyp, 'rebuild', '--directory', join(root, 'native')];
  // Offline machines: use the headers installed with node instead of downloading them.
  const prefix = resolve(dirname(process.execPath), '..');
  if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
  const gypRun = spawnSync(process.execPath, args, quiet);
  if (gypRun.status !== 0) {
    const tail = `${gypRun.stderr ?? ''}${gypRun.stdout ?? ''}`.trim().split('\n').filter((l) => /error/i.test(l)).slice(-1)[0] ?? 'see V=1 npm rebuild';
    skip(`native/ build failed: ${tail.trim()}`);
  }
  if (verbose) console.log('aegis: XDP program and addon built');
}

try {
  main();
} catch (e) {
  // never fail `npm install` over the optional XDP part
  skip(`build error: ${e && e.message ? e.message.split('\n')[0] : e}`);
}
