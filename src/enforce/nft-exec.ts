/**
 * Runs the `nft` binary: a script on stdin (`nft -f -`, one transaction) or a JSON listing.
 * The argv prefix is configurable (`['ip', 'netns', 'exec', ns, 'nft']` in tests) and every
 * invocation is counted, so "one process per burst" can be checked from outside.
 */
import { spawn } from 'node:child_process';

export interface NftResult {
  readonly ok: boolean;
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number | null;
}

const TIMEOUT_MS = 30_000;

export class NftRunner {
  readonly #argv: readonly string[];
  invocations = 0;

  constructor(argv: readonly string[]) {
    if (argv.length === 0) throw new TypeError('nft argv must not be empty');
    this.#argv = argv;
  }

  /** `nft -f -` with `script` on stdin */
  apply(script: string): Promise<NftResult> {
    return this.#run(['-f', '-'], script);
  }

  /** `nft -j list table FAMILY NAME` */
  listTable(family: string, table: string): Promise<NftResult> {
    return this.#run(['-j', 'list', 'table', family, table], null);
  }

  /** `nft -j list chain FAMILY TABLE CHAIN`: rules and their counters, no set elements */
  listChain(family: string, table: string, chain: string): Promise<NftResult> {
    return this.#run(['-j', 'list', 'chain', family, table, chain], null);
  }

  #run(args: readonly string[], stdin: string | null): Promise<NftResult> {
    this.invocations++;
    const [cmd, ...pre] = this.#argv as [string, ...string[]];
    return new Promise((resolve) => {
      const out: Buffer[] = [];
      const errs: Buffer[] = [];
      let done = false;
      const child = spawn(cmd, [...pre, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
      const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
      const finish = (r: NftResult): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(r);
      };
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => errs.push(b));
      child.on('error', (e) => finish({ ok: false, stdout: '', stderr: e.message, code: null }));
      child.on('close', (code) =>
        finish({ ok: code === 0, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(errs).toString('utf8').trim(), code }),
      );
      child.stdin.on('error', () => undefined);
      child.stdin.end(stdin ?? '');
    });
  }
}
