/**
 * The INI layer of the config loader, as fail2ban has it: one file (ini-parse), a merged set with
 * interpolation (config-store), includes and `.local`s (ini-cache), and the syntaxes inside
 * values (option-syntax). Import from here.
 */
export * from './ini-parse.js';
export * from './config-store.js';
export * from './ini-cache.js';
export * from './option-syntax.js';
