/**
 * Reading the metrics endpoint's secrets: the bearer token file and the TLS certificate/key.
 * Both are read at start and again on reload; a failure is a value so reload can keep the old
 * ones and say why.
 */
import { readFileSync, statSync } from 'node:fs';
import { createHash, timingSafeEqual } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import { errorMessage } from '../errors.js';

export type Loaded<T> = { ok: true; value: T; warning?: string } | { ok: false; message: string };

/** The token as a SHA-256 digest: comparing digests is constant-time and hides the length. */
export interface Token {
  readonly digest: Buffer;
}

export function loadToken(path: string): Loaded<Token> {
  let text: string;
  let mode: number;
  try {
    mode = statSync(path).mode;
    text = readFileSync(path, 'utf8');
  } catch (e) {
    return { ok: false, message: `metrics token_file ${path}: cannot read it (${errorMessage(e)})` };
  }
  // One token per file; a trailing newline from `echo > file` is not part of it.
  const token = text.trim();
  if (token.length === 0) return { ok: false, message: `metrics token_file ${path} is empty` };
  if (/\s/.test(token)) return { ok: false, message: `metrics token_file ${path}: the token must be one word without spaces` };
  const result: Loaded<Token> = { ok: true, value: { digest: sha256(token) } };
  if ((mode & 0o077) !== 0) {
    return {
      ...result,
      warning: `metrics token_file ${path} is readable by group or others (mode ${(mode & 0o777).toString(8)}); run: chmod 600 ${path}`,
    };
  }
  return result;
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** Checks an `Authorization` header against the token, in time independent of its content. */
export function tokenMatches(token: Token, header: string | undefined): boolean {
  if (header === undefined) return false;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  const given = sha256(m?.[1] ?? '');
  // Always run the comparison, also for a malformed header, so timing says nothing.
  return timingSafeEqual(given, token.digest) && m !== null;
}

export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly context: SecureContext;
}

export function loadTls(certPath: string, keyPath: string): Loaded<TlsMaterial> {
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readFileSync(certPath);
  } catch (e) {
    return { ok: false, message: `metrics tls_cert ${certPath}: cannot read it (${errorMessage(e)})` };
  }
  try {
    key = readFileSync(keyPath);
  } catch (e) {
    return { ok: false, message: `metrics tls_key ${keyPath}: cannot read it (${errorMessage(e)})` };
  }
  try {
    // Building the context parses both and checks that the key belongs to the certificate.
    const context = createSecureContext({ cert, key });
    return { ok: true, value: { cert, key, context } };
  } catch (e) {
    return { ok: false, message: `metrics tls_cert ${certPath} / tls_key ${keyPath}: not a usable certificate and key (${errorMessage(e)})` };
  }
}
