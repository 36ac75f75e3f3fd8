// fail2ban's own server as the peer: the same jail (the classic failregex over our JSON log),
// started in the foreground on a private socket, in-memory database and a no-op action, so
// what is measured is detection, not iptables.
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { percentile, hasCommand } from './daemon.js';

const RAW_REGEX = '^.*"event":"auth\\.login\\.failed".*"ip":"<HOST>".*$';

export function hasFail2banServer() {
  return hasCommand('fail2ban-client') && hasCommand('fail2ban-server');
}

function setup(dir, backend) {
  const conf = join(dir, 'conf');
  mkdirSync(join(conf, 'filter.d'), { recursive: true });
  mkdirSync(join(conf, 'action.d'), { recursive: true });
  mkdirSync(join(dir, 'run'), { recursive: true });
  writeFileSync(join(conf, 'fail2ban.conf'), `[Definition]\nloglevel = INFO\nlogtarget = ${dir}/fail2ban.log\nsocket = ${dir}/run/f2b.sock\npidfile = ${dir}/run/f2b.pid\ndbfile = :memory:\n`);
  writeFileSync(join(conf, 'filter.d/api.conf'), `[Definition]\nfailregex = ${RAW_REGEX}\ndatepattern = "time":{LEPOCH}\n`);
  writeFileSync(join(conf, 'action.d/noop.conf'), '[Definition]\nactionban =\nactionunban =\n');
  const log = join(dir, 'api.log');
  writeFileSync(log, '');
  writeFileSync(join(conf, 'jail.conf'), `[api]\nenabled = true\nbackend = ${backend}\nfilter = api\nlogpath = ${log}\nmaxretry = 5\nfindtime = 600\nbantime = 3600\naction = noop\n`);
  execFileSync('fail2ban-client', ['-c', conf, 'start'], { stdio: 'ignore', timeout: 30_000 });
  const pid = Number(readFileSync(join(dir, 'run/f2b.pid'), 'utf8').trim());
  return {
    conf,
    log,
    pid,
    status() {
      const out = spawnSync('fail2ban-client', ['-c', conf, 'status', 'api'], { encoding: 'utf8' }).stdout;
      return { totalFailed: Number(/Total failed:\s+(\d+)/.exec(out)?.[1] ?? 0), totalBanned: Number(/Total banned:\s+(\d+)/.exec(out)?.[1] ?? 0) };
    },
    rssKb() {
      return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    },
    stop() {
      spawnSync('fail2ban-client', ['-c', conf, 'stop'], { stdio: 'ignore', timeout: 30_000 });
    },
  };
}

const line = (ip, t = Date.now()) => `{"level":40,"time":${t},"event":"auth.login.failed","ip":"${ip}","user":"bob"}\n`;

/** ms from the 5th failure appended to "Ban" in fail2ban's log; backend auto (Debian's default) */
export async function fail2banBanLatency(dir, samples = 20) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const f = setup(dir, 'auto');
  const logFile = join(dir, 'fail2ban.log');
  const out = [];
  try {
    await new Promise((r) => setTimeout(r, 1000));
    for (let i = 0; i < samples; i++) {
      const ip = `198.18.1.${i + 1}`;
      appendFileSync(f.log, line(ip).repeat(4));
      await new Promise((r) => setTimeout(r, 300));
      const t0 = performance.now();
      appendFileSync(f.log, line(ip));
      for (;;) {
        const text = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
        if (text.includes(`Ban ${ip}\n`)) break;
        if (performance.now() - t0 > 10_000) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      out.push(performance.now() - t0);
    }
  } finally {
    f.stop();
  }
  return out.sort((a, b) => a - b);
}

/** a spray of `n` distinct addresses failing once: lines/s absorbed and RSS per address */
export async function fail2banSpray(dir, n = 100_000) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const f = setup(dir, 'polling');
  try {
    await new Promise((r) => setTimeout(r, 1000));
    const rss0 = f.rssKb();
    let text = '';
    const now = Date.now();
    for (let i = 0; i < n; i++) text += line(`11.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, now - 60_000);
    const t0 = performance.now();
    appendFileSync(f.log, text);
    for (;;) {
      if (f.status().totalFailed >= n) break;
      if (performance.now() - t0 > 300_000) throw new Error('fail2ban did not absorb the spray in 5 min');
      await new Promise((r) => setTimeout(r, 200));
    }
    const secs = (performance.now() - t0) / 1000;
    const rss = f.rssKb();
    return { linesPerSecond: n / secs, bytesPerIp: ((rss - rss0) * 1024) / n, rssMb: rss / 1024 };
  } finally {
    f.stop();
  }
}

export { percentile };
