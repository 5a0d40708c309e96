// assets — shared by the cache/compression integration tests and the cache benchmark:
// start tests/upstream/assets-upstream.mjs, ask it for its counts, and fetch raw bytes
// (no decoding) over HTTPS/1.1 or HTTP/2 from ott-edge.
import { spawn } from 'node:child_process';
import https from 'node:https';
import http2 from 'node:http2';
import path from 'node:path';
import { TESTS_DIR, freePort, waitFor, httpGet, slow } from '../../lib/harness.mjs';

export const ASSETS_SCRIPT = path.join(TESTS_DIR, 'upstream/assets-upstream.mjs');

const procs = new Set();
process.on('exit', () => {
    for (const p of procs) {
        try {
            p.kill('SIGKILL');
        } catch {}
    }
});

/** Starts the asset upstream on a free loopback port; {port, url, stop(), count(path), counts(), reset()}. */
export async function startAssets({ dir } = {}) {
    const port = await freePort();
    const args = [ASSETS_SCRIPT, '--port', String(port), '--host', '127.0.0.1', ...(dir ? ['--dir', dir] : [])];
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    procs.add(proc);
    proc.on('exit', () => procs.delete(proc));
    const url = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await httpGet(`${url}/count`, { timeoutMs: 1000 })).status === 200, 10000, 'assets upstream');
    return {
        port,
        url,
        pid: proc.pid,
        async count(p) {
            return JSON.parse((await httpGet(`${url}/count?path=${encodeURIComponent(p)}`)).body).count;
        },
        async counts() {
            return JSON.parse((await httpGet(`${url}/count`)).body);
        },
        async stop() {
            if (proc.exitCode !== null || proc.signalCode !== null) return;
            const done = new Promise((r) => proc.once('exit', r));
            proc.kill('SIGTERM');
            await done;
        },
    };
}

/** GET/HEAD over HTTPS/1.1 (fresh connection, certificate not checked); body is a Buffer, never decoded. */
export function get1(port, pathname, { headers = {}, method = 'GET', timeoutMs = 10000 } = {}) {
    return new Promise((resolve, reject) => {
        const req = https.request(
            { host: '127.0.0.1', port, path: pathname, method, headers, agent: false, rejectUnauthorized: false, timeout: timeoutMs * slow },
            (res) => {
                const chunks = [];
                res.on('data', (c) => chunks.push(c));
                res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
                res.on('error', reject);
            },
        );
        req.on('timeout', () => req.destroy(new Error(`timeout: ${method} ${pathname}`)));
        req.on('error', reject);
        req.end();
    });
}

/** The same over HTTP/2 on an existing ClientHttp2Session. */
export function get2(session, pathname, { headers = {}, method = 'GET', timeoutMs = 10000 } = {}) {
    return new Promise((resolve, reject) => {
        const req = session.request({ ':path': pathname, ':method': method, ...headers });
        const chunks = [];
        let head;
        const t = setTimeout(() => req.close(http2.constants.NGHTTP2_CANCEL), timeoutMs * slow);
        req.on('response', (h) => (head = h));
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
            clearTimeout(t);
            resolve({ status: head?.[':status'], headers: head || {}, body: Buffer.concat(chunks) });
        });
        req.on('error', (e) => {
            clearTimeout(t);
            reject(e);
        });
        req.end();
    });
}

/** The upstream's own answer (plain HTTP), body as a Buffer. */
export function getUpstream(url, pathname, headers = {}) {
    return new Promise((resolve, reject) => {
        import('node:http').then(({ default: http }) => {
            http.get(`${url}${pathname}`, { headers, agent: false }, (res) => {
                const chunks = [];
                res.on('data', (c) => chunks.push(c));
                res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
            }).on('error', reject);
        }, reject);
    });
}

/** Value of one metric line from Prometheus text (first match), or undefined. */
export function metric(text, name) {
    const m = new RegExp(`^${name.replace(/[{}"=]/g, '\\$&')} (\\d+(?:\\.\\d+)?)$`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
}

/** Whether this ott-edge build offers brotli (it needs libbrotlienc at build time; without it only gzip). */
export async function edgeOffersBrotli(port) {
    const r = await get1(port, '/assets/brotli-probe.js', { headers: { 'accept-encoding': 'br' } });
    const br = r.headers['content-encoding'] === 'br';
    if (!br) process.stderr.write('# note: this ott-edge was built without brotli (libbrotlienc): only gzip is checked\n');
    return br;
}
