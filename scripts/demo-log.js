#!/usr/bin/env node
// Prepares the demo log for `npm start`: creates var/log/cartae-api.log if missing, then (with
// --attack) appends five failed logins from 198.51.100.23 so the demo jail bans it.
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';

const file = 'var/log/cartae-api.log';
mkdirSync('var/log', { recursive: true });
const line = (o) => JSON.stringify({ level: 30, time: Date.now(), pid: 4242, hostname: 'api-1', ...o }) + '\n';
if (!existsSync(file)) {
  writeFileSync(
    file,
    line({ event: 'http.request', ip: '203.0.113.10', path: '/api/v1/docs', status: 200 }) +
      line({ level: 40, event: 'auth.login.failed', ip: '203.0.113.11', user: 'alice' }),
  );
}
if (process.argv.includes('--attack')) {
  let out = '';
  for (let i = 0; i < 5; i++) out += line({ level: 40, event: 'auth.login.failed', ip: '198.51.100.23', user: `admin${i}` });
  appendFileSync(file, out);
  console.log(`appended 5 failed logins from 198.51.100.23 to ${file}`);
}
