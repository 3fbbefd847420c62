// The built binary keeps its hardening while the link is tuned for start-up (Makefile: static
// libraries, -Wl,-O1): position independent, full RELRO (GNU_RELRO + BIND_NOW), stack protector and
// FORTIFY_SOURCE checks, no executable stack; and the libraries it loads at every start stay few
// (glibc and, with OPENSSL_LINK=shared, libcrypto; libcurl only by dlopen). Read with readelf
// (binutils) from the binary the other tests run: $KINDE_FCGI_BIN or build/kinde.fcgi.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';

import { binary } from '../lib/cgi.mjs';

// readelf -W ARGS of the binary under test, as text.
const readelf = (...args) => execFileSync('readelf', ['-W', ...args, binary], { encoding: 'utf8', maxBuffer: 64 << 20 });

// inspect() -> what the tests check, read from the ELF header, segments, dynamic section and symbols.
function inspect() {
  assert.ok(existsSync(binary), `${binary} is missing: build it first (make)`);
  const header = readelf('-h');
  const segments = readelf('-l');
  const dynamic = readelf('-d');
  const dynsyms = readelf('--dyn-syms');
  const flags = (tag) => (new RegExp(`\\(${tag}\\)\\s+(?:Flags: )?(.*)$`, 'm').exec(dynamic)?.[1] ?? '').split(/\s+/);
  return {
    type: /^\s*Type:\s+(\S+)/m.exec(header)?.[1],
    flags: flags('FLAGS'),
    flags1: flags('FLAGS_1'),
    relro: /^\s*GNU_RELRO\s/m.test(segments),
    stack: /^\s*GNU_STACK\s.*$/m.exec(segments)?.[0] ?? '',
    needed: [...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]),
    imports: [...dynsyms.matchAll(/\sUND\s+(\S+)/g)].map((m) => m[1].replace(/@.*$/, '')),
  };
}

test('kinde.fcgi is a position-independent executable', () => {
  const elf = inspect();
  assert.equal(elf.type, 'DYN', `ELF type ${elf.type}: not built with -pie`);
  assert.ok(elf.flags1.includes('PIE'), `FLAGS_1 ${elf.flags1.join(' ')} lacks PIE`);
});

test('kinde.fcgi has full RELRO: a GNU_RELRO segment and BIND_NOW', () => {
  const elf = inspect();
  assert.ok(elf.relro, 'no GNU_RELRO segment: linked without -z relro');
  assert.ok(elf.flags.includes('BIND_NOW') || elf.flags1.includes('NOW'),
    `neither FLAGS (${elf.flags.join(' ')}) nor FLAGS_1 (${elf.flags1.join(' ')}) binds now: linked without -z now`);
});

test('kinde.fcgi is built with the stack protector and FORTIFY_SOURCE, and its stack is not executable', () => {
  const elf = inspect();
  assert.ok(elf.imports.includes('__stack_chk_fail'), 'no __stack_chk_fail import: built without -fstack-protector');
  assert.ok(elf.imports.some((s) => /^__\w+_chk$/.test(s) && s !== '__stack_chk_fail'),
    'no __*_chk import: built without -D_FORTIFY_SOURCE');
  assert.match(elf.stack, /\sRW\s/, `GNU_STACK is not RW: ${elf.stack}`);
});

test('kinde.fcgi loads only glibc (and libcrypto) at start; libcurl only when the provider is called', () => {
  const elf = inspect();
  const allowed = /^(libc\.so|libm\.so|ld-linux[\w-]*\.so|libcrypto\.so)/;
  const extra = elf.needed.filter((n) => !allowed.test(n));
  assert.deepEqual(extra, [], `libraries loaded at every start besides glibc: ${extra.join(', ')} (Makefile APP_LDLIBS)`);
  assert.ok(elf.needed.some((n) => n.startsWith('libc.so')), `no libc among ${elf.needed.join(', ')}`);
});
