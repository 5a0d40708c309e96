#!/usr/bin/env node
// assets-upstream — an OTT-like static asset server for the cache and compression tests
// and the cache benchmark. Plain node:http, HTTP/1.1, like OTT's Express static handler:
//   /assets/<name>      a file from --dir (read from disk on every request) or, when absent,
//                       a generated JS-like text (?kb=N, default 200); Cache-Control: public,
//                       max-age=31536000, immutable; strong ETag; Last-Modified; answers
//                       If-None-Match / If-Modified-Since with 304 like serve-static.
//   /index.html         text/html, Cache-Control: no-cache, ETag (OTT's SPA shell)
//   /small.js           a 200-byte script (below compress.min_size), cacheable
//   /img.png            binary image/png, cacheable
//   /gz/<name>          a gzip body sent with Content-Encoding: gzip (already encoded), cacheable
//   /private, /nostore, /nocache, /cookie, /plain (no Cache-Control)   never cacheable
//   /vary               Vary: X-Variant; the body names the request's X-Variant; cacheable
//   /slowasset?ms=N     a cacheable asset answered after N ms (for coalescing)
//   /chunked            a cacheable asset sent in 8 chunks without Content-Length
//   /aged               max-age=100 with Age: 40 (so 60 s fresh here)
//   /ttl/<name>?s=N     public, max-age=N; the body counts the upstream's hits on that path
//   /expires            no Cache-Control, Expires 10 minutes ahead (cacheable)
//   /flood/<anything>?kb=N   cacheable N KiB bodies, distinct per URL
//   /count              requests seen per path (JSON); /count?path=/x → {"path","count"}; /count?reset=1
// Usage: node assets-upstream.mjs [--port N] [--host 127.0.0.1] [--dir DIR]
// Prints "assets-upstream listening on http://HOST:PORT" once listening.

import http from 'node:http';
import zlib from 'node:zlib';
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';

function arg(name, dflt) {
    const i = process.argv.indexOf(`--${name}`);
    if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
    return dflt;
}
const port = Number(arg('port', process.env.ASSETS_UPSTREAM_PORT || '8081'));
const host = arg('host', '127.0.0.1');
const dir = arg('dir', process.env.ASSETS_UPSTREAM_DIR || '');

const counts = new Map();
const STARTED = new Date(Date.UTC(2026, 0, 1)).toUTCString();
const IMMUTABLE = 'public, max-age=31536000, immutable';

/** Deterministic minified-JS-like text of about kb KiB (compresses about like real bundles). */
const generated = new Map();
export function generatedJs(kb) {
    if (generated.has(kb)) return generated.get(kb);
    let s = '/*! generated asset */', i = 0, x = 12345;
    const words = ['return', 'function', 'const', 'this', 'null', 'undefined', 'props', 'state', 'emit', 'value'];
    while (s.length < kb * 1024) {
        x = (x * 1103515245 + 12345) & 0x7fffffff;
        const w = words[x % words.length];
        s += `function ${w}_${(x % 4096).toString(36)}(e,t){${w}(e.${words[(x >> 4) % 10]}_${i % 97},t+${x % 1000});` +
            `if(e===${x % 50})${w}=t;else return e&&t?"${w}${i}":void 0}`;
        i++;
    }
    const buf = Buffer.from(s.slice(0, kb * 1024));
    generated.set(kb, buf);
    return buf;
}

function etagOf(buf) {
    return `"${createHash('sha1').update(buf).digest('base64url').slice(0, 27)}"`;
}

function typeOf(name) {
    const ext = path.extname(name).toLowerCase();
    return (
        {
            '.js': 'application/javascript; charset=utf-8',
            '.mjs': 'application/javascript; charset=utf-8',
            '.css': 'text/css; charset=utf-8',
            '.html': 'text/html; charset=utf-8',
            '.json': 'application/json; charset=utf-8',
            '.svg': 'image/svg+xml',
            '.png': 'image/png',
            '.woff2': 'font/woff2',
        }[ext] || 'application/octet-stream'
    );
}

function send(res, status, headers, body) {
    const buf = body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body);
    res.writeHead(status, { 'Content-Length': buf.length, ...headers });
    res.end(res.req.method === 'HEAD' ? undefined : buf);
}

/** serve-static's conditional handling: If-None-Match (weak compare) wins over If-Modified-Since. */
function fresh(req, etag, lastModified) {
    const inm = req.headers['if-none-match'];
    if (inm) {
        return inm
            .split(',')
            .map((t) => t.trim().replace(/^W\//, ''))
            .some((t) => t === '*' || t === etag.replace(/^W\//, ''));
    }
    const ims = req.headers['if-modified-since'];
    return ims ? Date.parse(lastModified) <= Date.parse(ims) : false;
}

async function asset(req, res, name, url) {
    let body;
    if (dir) {
        const file = path.join(dir, path.basename(name));
        try {
            await stat(file);
            body = await readFile(file); // from disk on every request, like express.static
        } catch {
            return send(res, 404, { 'Content-Type': 'text/plain' }, 'not found');
        }
    } else {
        body = generatedJs(Math.min(Math.max(Number(url.searchParams.get('kb')) || 200, 1), 16384));
    }
    const etag = etagOf(body);
    const headers = { 'Cache-Control': IMMUTABLE, ETag: etag, 'Last-Modified': STARTED, 'Accept-Ranges': 'bytes' };
    if (fresh(req, etag, STARTED)) return send(res, 304, { 'Cache-Control': IMMUTABLE, ETag: etag, 'Last-Modified': STARTED });
    send(res, 200, { 'Content-Type': typeOf(name), ...headers }, body);
}

const INDEX = Buffer.from(
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>OpenTogetherTube</title>' +
        '<link rel="stylesheet" href="/assets/index.css"><script type="module" src="/assets/index.js"></script>' +
        '</head><body><div id="app"></div>' +
        '<noscript>OpenTogetherTube needs JavaScript to work. Please enable it to continue.</noscript>'.repeat(12) +
        '</body></html>\n',
);

function handle(req, res) {
    const url = new URL(req.url, 'http://upstream.invalid');
    const p = url.pathname;
    if (p === '/count') {
        if (url.searchParams.get('reset')) counts.clear();
        const q = url.searchParams.get('path');
        return send(res, 200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' },
            JSON.stringify(q !== null ? { path: q, count: counts.get(q) || 0 } : Object.fromEntries(counts)));
    }
    counts.set(p, (counts.get(p) || 0) + 1);

    if (p.startsWith('/assets/')) return void asset(req, res, p.slice(8), url);
    if (p === '/index.html')
        return send(res, 200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-cache', ETag: etagOf(INDEX) }, INDEX);
    if (p === '/small.js')
        return send(res, 200, { 'Content-Type': 'application/javascript', 'Cache-Control': IMMUTABLE }, generatedJs(1).subarray(0, 200));
    if (p === '/img.png') {
        const png = Buffer.alloc(64 * 1024);
        for (let i = 0, x = 7; i < png.length; i++) png[i] = (x = (x * 1103515245 + 12345) & 0x7fffffff) >> 16;
        Buffer.from('\x89PNG\r\n\x1a\n', 'latin1').copy(png);
        return send(res, 200, { 'Content-Type': 'image/png', 'Cache-Control': 'public, max-age=3600', ETag: etagOf(png) }, png);
    }
    if (p.startsWith('/gz/')) {
        const gz = zlib.gzipSync(generatedJs(64));
        return send(res, 200, { 'Content-Type': 'application/javascript', 'Content-Encoding': 'gzip', 'Cache-Control': IMMUTABLE, Vary: 'Accept-Encoding' }, gz);
    }
    const js = { 'Content-Type': 'application/javascript' };
    const body = generatedJs(8);
    if (p === '/private') return send(res, 200, { ...js, 'Cache-Control': 'private, max-age=600' }, body);
    if (p === '/nostore') return send(res, 200, { ...js, 'Cache-Control': 'no-store' }, body);
    if (p === '/nocache') return send(res, 200, { ...js, 'Cache-Control': 'no-cache' }, body);
    if (p === '/plain') return send(res, 200, js, body);
    if (p === '/cookie')
        return send(res, 200, { ...js, 'Cache-Control': 'public, max-age=600', 'Set-Cookie': `session=${counts.get(p)}; Path=/; HttpOnly; Secure` }, body);
    if (p === '/vary') {
        const v = req.headers['x-variant'] || 'none';
        return send(res, 200, { 'Content-Type': 'text/plain', 'Cache-Control': 'public, max-age=600', Vary: 'X-Variant' }, `variant=${v} n=${counts.get(p)}\n`);
    }
    if (p === '/slowasset') {
        const ms = Math.min(Math.max(Number(url.searchParams.get('ms')) || 300, 0), 30000);
        return void setTimeout(() => send(res, 200, { ...js, 'Cache-Control': IMMUTABLE, ETag: etagOf(body) }, body), ms);
    }
    if (p === '/chunked') {
        const big = generatedJs(64);
        res.writeHead(200, { ...js, 'Cache-Control': IMMUTABLE });
        let i = 0;
        const step = () => {
            if (i === 8) return res.end();
            res.write(big.subarray(i * 8192, (i + 1) * 8192));
            i++;
            setTimeout(step, 5);
        };
        return step();
    }
    if (p.startsWith('/ttl/')) {
        const secs = Math.min(Math.max(Number(url.searchParams.get('s')) || 1, 0), 3600);
        return send(res, 200, { ...js, 'Cache-Control': `public, max-age=${secs}` }, `${p} n=${counts.get(p)}\n`);
    }
    if (p === '/expires')
        return send(res, 200, { ...js, Date: new Date().toUTCString(), Expires: new Date(Date.now() + 600000).toUTCString() }, body);
    if (p === '/aged') return send(res, 200, { ...js, 'Cache-Control': 'public, max-age=100', Age: '40' }, body);
    if (p.startsWith('/flood/')) {
        const kb = Math.min(Math.max(Number(url.searchParams.get('kb')) || 4, 1), 1024);
        const b = Buffer.alloc(kb * 1024, p);
        return send(res, 200, { 'Content-Type': 'application/octet-stream', 'Cache-Control': 'public, max-age=600' }, b);
    }
    send(res, 404, { 'Content-Type': 'text/plain' }, 'not found');
}

const server = http.createServer(handle);
server.keepAliveTimeout = 5000;
server.listen(port, host, () => {
    const a = server.address();
    console.log(`assets-upstream listening on http://${host}:${a.port}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
