// Runs build/kinde.fcgi as a plain CGI program: one request from environment variables and stdin.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const binary = process.env.KINDE_FCGI_BIN || path.join(projectRoot, 'build/kinde.fcgi');

// runCgi({method, path, query, headers, body, env, scriptName}) -> {status, headers (lower-case, arrays for
// set-cookie), body, stderr}. `env` adds variables (KINDE_CONFIG ...). Times out after timeoutMs.
export function runCgi({ method = 'GET', path: p = '/', query = '', headers = {}, body = '', env = {},
                         scriptName = '', timeoutMs = 15000 } = {}) {
  const vars = {
    PATH: process.env.PATH, GATEWAY_INTERFACE: 'CGI/1.1', SERVER_PROTOCOL: 'HTTP/1.1',
    SERVER_NAME: '127.0.0.1', SERVER_PORT: '80', REMOTE_ADDR: '127.0.0.1', REQUEST_METHOD: method,
    SCRIPT_NAME: scriptName, PATH_INFO: p, QUERY_STRING: query,
    REQUEST_URI: scriptName + p + (query ? '?' + query : ''),
    ...env,
  };
  for (const [k, v] of Object.entries(headers)) {
    const name = k.toLowerCase() === 'content-type' ? 'CONTENT_TYPE'
      : 'HTTP_' + k.toUpperCase().replace(/-/g, '_');
    vars[name] = v;
  }
  if (body) vars.CONTENT_LENGTH = String(Buffer.byteLength(body));
  return new Promise((resolve, reject) => {
    const child = spawn(binary, [], { env: vars, stdio: ['pipe', 'pipe', 'pipe'] });
    const out = []; const err = [];
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`CGI run timed out after ${timeoutMs} ms`)); }, timeoutMs);
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', () => {
      clearTimeout(timer);
      const raw = Buffer.concat(out).toString('utf8');
      const sep = raw.indexOf('\r\n\r\n');
      const head = sep >= 0 ? raw.slice(0, sep) : raw;
      const res = { status: 200, headers: {}, body: sep >= 0 ? raw.slice(sep + 4) : '', stderr: Buffer.concat(err).toString('utf8') };
      for (const line of head.split('\r\n')) {
        const i = line.indexOf(':');
        if (i < 0) continue;
        const name = line.slice(0, i).toLowerCase(); const value = line.slice(i + 1).trim();
        if (name === 'status') res.status = parseInt(value, 10);
        else if (name === 'set-cookie') (res.headers[name] ||= []).push(value);
        else res.headers[name] = value;
      }
      resolve(res);
    });
    // The app may answer (and exit) without reading the body, e.g. a 413 or a GET: EPIPE on its
    // stdin is then expected, not a test failure.
    child.stdin.on('error', (e) => { if (e.code !== 'EPIPE') reject(e); });
    child.stdin.end(body);
  });
}
