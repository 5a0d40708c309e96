// hostile-http1 — hostile HTTP/1.1 over TLS, sent as raw bytes: request smuggling shapes
// (Content-Length with Transfer-Encoding, duplicate or malformed Content-Length, bad
// Transfer-Encoding, obsolete line folding), oversized request lines and headers, absurd
// numbers of headers, invalid Host, CR/LF/NUL inside header values, absolute-form targets.
//
// What must hold for every shape: either ott-edge answers 400 (414/431 for sizes) and
// nothing reaches the upstream, or it normalises the request so that the upstream sees
// exactly one unambiguous request per response the client got (one Content-Length that
// matches the body, no Transfer-Encoding) — checked on /debug/headers and on the
// upstream's /count. Framing conflicts (CL with TE, differing CLs, bare LF line ends) are
// refused outright: 400 and the connection closed (RFC 9112 §6.1, §6.3, §2.2), as nginx
// and HAProxy do. And ott-edge keeps serving normal clients afterwards.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { slow, startUpstream, startEdge, curl, httpGet } from '../lib/harness.mjs';

const T = 30000 * slow;
const H = 'Host: ott.test\r\n';
const HEALTH = '/api/status';

/** Sends raw bytes over TLS; collects everything until the server closes or timeoutMs passes.
 *  Returns {raw, statuses, closed (by the server), ms}. */
function exchange(port, bytes, { timeoutMs = 3000 } = {}) {
    return new Promise((resolve, reject) => {
        const t0 = Date.now();
        const chunks = [];
        let done = false;
        const s = tls.connect({ host: '127.0.0.1', port, servername: 'ott.test', ALPNProtocols: ['http/1.1'], rejectUnauthorized: false });
        const finish = (closed) => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            s.destroy();
            const raw = Buffer.concat(chunks).toString('latin1');
            const statuses = [...raw.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));
            resolve({ raw, statuses, closed, ms: Date.now() - t0 });
        };
        const timer = setTimeout(() => finish(false), timeoutMs * slow);
        s.once('secureConnect', () => s.write(bytes));
        s.on('data', (c) => chunks.push(c));
        s.on('end', () => finish(true));
        s.on('close', () => finish(true));
        s.on('error', (e) => {
            if (e.code === 'ECONNRESET' || e.code === 'EPIPE') finish(true);
            else if (!done) {
                done = true;
                clearTimeout(timer);
                reject(e);
            }
        });
    });
}

/** The JSON bodies of /debug/headers responses found in a raw HTTP/1.1 byte stream. */
function debugBodies(raw) {
    return [...raw.matchAll(/\{"method":.*?"remoteAddress":"[^"]*"\}/g)].map((m) => JSON.parse(m[0]));
}

function headerList(j, name) {
    return j.headers.filter(([k]) => k.toLowerCase() === name).map(([, v]) => v);
}

describe('HTTP/1.1 hostile input', () => {
    let up, edge;
    const counts = async () => JSON.parse((await httpGet(`${up.url}/count`)).body);

    /** Sends bytes and returns the exchange plus how many requests reached the upstream. */
    async function attempt(bytes, opts) {
        const before = await counts();
        const r = await exchange(edge.httpsPort, bytes, opts);
        const after = await counts();
        // ott-edge's own health checks (GET /api/status every proxy.health_interval) do not count
        r.newPaths = Object.keys(after.paths).filter((p) => (before.paths[p] || 0) !== after.paths[p] && p !== HEALTH);
        r.upstream = r.newPaths.reduce((n, p) => n + after.paths[p] - (before.paths[p] || 0), 0);
        return r;
    }

    /** Safety for a smuggling shape: 400 and nothing upstream, or every request the upstream
     *  saw was answered to the client and carries one Content-Length equal to its body. */
    function assertNoSmuggle(r, what) {
        const ctx = `${what}: statuses ${JSON.stringify(r.statuses)}, upstream requests ${r.upstream}, paths ${JSON.stringify(r.newPaths)}\n${r.raw.slice(0, 600)}`;
        if (r.statuses.length === 1 && r.statuses[0] === 400) {
            assert.equal(r.upstream, 0, `400 but the upstream saw a request — ${ctx}`);
            return 'rejected';
        }
        const fromUpstream = r.statuses.filter((s) => s !== 400 && s !== 408).length;
        assert.equal(r.upstream, fromUpstream, `upstream requests != responses the client got — ${ctx}`);
        for (const j of debugBodies(r.raw)) {
            assert.deepEqual(headerList(j, 'transfer-encoding'), [], `Transfer-Encoding reached the upstream — ${ctx}`);
            const cl = headerList(j, 'content-length');
            assert.ok(cl.length <= 1, `several Content-Length reached the upstream — ${ctx}`);
            assert.equal(Number(cl[0] || 0), j.bodyLength, `Content-Length does not match the body — ${ctx}`);
        }
        return 'normalised';
    }

    async function assertServing() {
        for (const proto of ['--http2', '--http1.1']) {
            const r = await curl(['-k', proto, '-w', '\n%{http_code}', `${edge.url}/api/status`]);
            assert.equal(r.code, 0, `curl ${proto} failed: ${r.stderr}`);
            assert.match(r.stdout, /\{"status":"ok"\}\n200$/, `no longer serving (${proto})`);
        }
        assert.equal(edge.exitInfo, null, `ott-edge exited: ${JSON.stringify(edge.exitInfo)}\n${edge.stderr()}`);
    }

    const note = (s) => process.stderr.write(`# note: ${s}\n`);

    before(async () => {
        up = await startUpstream();
        edge = await startEdge({ config: { upstream: up.url, client: { request_timeout: '3s' } } });
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    it('Content-Length + Transfer-Encoding (CL.TE shape) cannot smuggle a request upstream', { timeout: T }, async () => {
        const body = '0\r\n\r\nGET /smuggled-clte HTTP/1.1\r\nHost: ott.test\r\n\r\n';
        const r = await attempt(`POST /debug/headers HTTP/1.1\r\n${H}Content-Length: ${body.length}\r\nTransfer-Encoding: chunked\r\n\r\n${body}`);
        note(`CL.TE -> ${assertNoSmuggle(r, 'CL.TE')} (statuses ${r.statuses}, upstream requests ${r.upstream}, server closed: ${r.closed})`);
        assert.deepEqual(r.statuses, [400], 'CL with TE is refused');
        assert.equal(r.closed, true, 'and the connection closed');
        await assertServing();
    });

    it('Transfer-Encoding + Content-Length (TE.CL shape) cannot smuggle a request upstream', { timeout: T }, async () => {
        const inner = 'GET /smuggled-tecl HTTP/1.1\r\nHost: ott.test\r\n\r\n';
        const body = `${inner.length.toString(16)}\r\n${inner}\r\n0\r\n\r\n`;
        const r = await attempt(`POST /debug/headers HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n${body}`);
        note(`TE.CL -> ${assertNoSmuggle(r, 'TE.CL')} (statuses ${r.statuses}, upstream requests ${r.upstream})`);
        assert.deepEqual(r.statuses, [400], 'TE with CL is refused');
        assert.equal(r.closed, true, 'and the connection closed');
        assert.ok(!r.newPaths.includes('/smuggled-tecl'), 'the chunk body became a request upstream');
        await assertServing();
    });

    it('the connection is closed after a request with both CL and TE (RFC 9112 §6.1 MUST)', { timeout: T }, async () => {
        const body = '0\r\n\r\nGET /smuggled-clte2 HTTP/1.1\r\nHost: ott.test\r\n\r\n';
        const r = await attempt(`POST /debug/headers HTTP/1.1\r\n${H}Content-Length: ${body.length}\r\nTransfer-Encoding: chunked\r\n\r\n${body}`);
        note(`CL+TE: statuses ${r.statuses}, upstream requests ${r.upstream}, closed ${r.closed}`);
        assert.deepEqual(r.statuses, [400], `a second request was read after CL+TE: ${r.statuses}`);
        assert.equal(r.closed, true);
        assert.equal(r.upstream, 0);
        assert.ok(!r.newPaths.includes('/smuggled-clte2'), 'the bytes after a CL+TE body were served as a request');
    });

    // The desync found by hand against libh2o 2.2.5's HTTP/1 server: a bare LF ends the
    // header line before Transfer-Encoding for one parser and not for another.
    it('a bare-LF line before Transfer-Encoding gets 400, the connection closed, nothing upstream', { timeout: T }, async () => {
        const body = '0\r\n\r\nGET /smuggled-lf HTTP/1.1\r\nHost: ott.test\r\n\r\n';
        const r = await attempt(`POST /debug/headers HTTP/1.1\r\n${H}X-Pad: y\nTransfer-Encoding: chunked\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
        note(`bare LF: statuses ${r.statuses}, upstream requests ${r.upstream}, closed ${r.closed}`);
        assert.deepEqual(r.statuses, [400]);
        assert.equal(r.closed, true);
        assert.equal(r.upstream, 0);
        const plain = await attempt(`GET /debug/headers HTTP/1.1\nHost: ott.test\nConnection: close\n\n`);
        assert.deepEqual(plain.statuses, [400], 'a head with LF-only line ends is refused as a whole');
        await assertServing();
    });

    it('identical duplicate Content-Length is accepted once or refused', { timeout: T }, async () => {
        const r = await attempt(`POST /debug/headers HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello`);
        note(`duplicate identical Content-Length -> ${assertNoSmuggle(r, 'dup CL')}`);
        await assertServing();
    });

    for (const [label, a, b] of [['5 then 30', 5, 30], ['30 then 5', 30, 5]]) {
        it(`conflicting Content-Length (${label}) never desyncs the upstream`, { timeout: T }, async () => {
            const r = await attempt(`POST /debug/headers HTTP/1.1\r\n${H}Content-Length: ${a}\r\nContent-Length: ${b}\r\n\r\nhello` +
                'GET /smuggled-cl HTTP/1.1\r\nHost: ott.test\r\n\r\n');
            note(`conflicting Content-Length ${label} -> ${assertNoSmuggle(r, 'conflicting CL')} (statuses ${r.statuses}, closed ${r.closed} after ${r.ms} ms)`);
            await assertServing();
        });
        it(`conflicting Content-Length (${label}) gets 400 (RFC 9112 §6.3)`, { timeout: T }, async () => {
            const r = await attempt(`POST /debug/headers HTTP/1.1\r\n${H}Content-Length: ${a}\r\nContent-Length: ${b}\r\n\r\nhello`, { timeoutMs: 1500 });
            assert.deepEqual(r.statuses, [400], `got ${JSON.stringify(r.statuses)} after ${r.ms} ms`);
            assert.equal(r.closed, true, 'the connection is closed after a framing error');
            assert.equal(r.upstream, 0);
        });
    }

    const MALFORMED_CL = ['5, 5', '-1', '+5', '0x5', '5 5', '', '99999999999999999999999', '5\t;x'];
    it(`malformed Content-Length values get 400: ${JSON.stringify(MALFORMED_CL)}`, { timeout: T }, async () => {
        for (const v of MALFORMED_CL) {
            const r = await attempt(`POST /debug/headers HTTP/1.1\r\n${H}Content-Length: ${v}\r\nConnection: close\r\n\r\nhello`);
            assert.deepEqual(r.statuses, [400], `Content-Length: ${JSON.stringify(v)} -> ${JSON.stringify(r.statuses)}\n${r.raw.slice(0, 300)}`);
            assert.equal(r.upstream, 0, `Content-Length: ${JSON.stringify(v)} reached the upstream`);
        }
        const r = await attempt(`POST /debug/headers HTTP/1.1\r\n${H}Content-Length : 5\r\nConnection: close\r\n\r\nhello`);
        assert.deepEqual(r.statuses, [400], 'space before the colon must be refused');
        await assertServing();
    });

    const BAD_TE = ['xchunked', 'gzip, chunked', 'chunked, identity', 'identity', 'chunked\x0b'];
    it(`unknown or layered Transfer-Encoding gets 400: ${JSON.stringify(BAD_TE)}`, { timeout: T }, async () => {
        for (const v of BAD_TE) {
            const r = await attempt(`POST /debug/headers HTTP/1.1\r\n${H}Transfer-Encoding: ${v}\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n`);
            assert.deepEqual(r.statuses, [400], `Transfer-Encoding: ${JSON.stringify(v)} -> ${JSON.stringify(r.statuses)}`);
            assert.equal(r.upstream, 0);
        }
        for (const dup of [['chunked', 'identity'], ['chunked', 'chunked']]) {
            const r = await attempt(`POST /debug/headers HTTP/1.1\r\n${H}Transfer-Encoding: ${dup[0]}\r\nTransfer-Encoding: ${dup[1]}\r\n` +
                'Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
            note(`two Transfer-Encoding lines ${dup} -> ${assertNoSmuggle(r, `TE ${dup}`)}`);
        }
        const r = await attempt(`POST /debug/headers HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n`);
        assert.deepEqual(r.statuses, [400], 'space before the colon must be refused');
        await assertServing();
    });

    it('chunked bodies with extensions or bad sizes: normalised or refused', { timeout: T }, async () => {
        const shapes = {
            ext: '5;x=y\r\nhello\r\n0\r\n\r\n',
            badsize: 'zz\r\nhello\r\n0\r\n\r\n',
            negsize: '-5\r\nhello\r\n0\r\n\r\n',
            hugesize: 'ffffffffffffffffff\r\nhello\r\n0\r\n\r\n',
            trailer: '5\r\nhello\r\n0\r\nX-Trailer: 1\r\nContent-Length: 99\r\n\r\n',
        };
        for (const [k, body] of Object.entries(shapes)) {
            const r = await attempt(`POST /debug/headers HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n${body}`, { timeoutMs: 1500 });
            note(`chunked ${k} -> ${assertNoSmuggle(r, `chunked ${k}`)} (statuses ${r.statuses})`);
        }
        await assertServing();
    });

    it('obsolete line folding gets 400 (also when it hides Transfer-Encoding)', { timeout: T }, async () => {
        for (const req of [
            `GET /debug/headers HTTP/1.1\r\n${H}X-Folded: a\r\n  b\r\nConnection: close\r\n\r\n`,
            `GET /debug/headers HTTP/1.1\r\n${H}X-Folded: a\r\n\tb\r\nConnection: close\r\n\r\n`,
            `POST /debug/headers HTTP/1.1\r\n${H}X-A: a\r\n Transfer-Encoding: chunked\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello`,
            `POST /debug/headers HTTP/1.1\r\n${H}Content-Length:\r\n 5\r\nConnection: close\r\n\r\nhello`,
        ]) {
            const r = await attempt(req);
            assert.deepEqual(r.statuses, [400], `${JSON.stringify(req.slice(0, 90))} -> ${JSON.stringify(r.statuses)}`);
            assert.equal(r.upstream, 0);
        }
        await assertServing();
    });

    it('an oversized request line gets 400 or 414 and nothing reaches the upstream', { timeout: T }, async () => {
        const ok = await attempt(`GET /debug/headers?${'a'.repeat(4096)} HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
        assert.deepEqual(ok.statuses, [200], 'a 4 KiB request line must still be served');
        for (const kib of [64, 1024]) {
            const r = await attempt(`GET /debug/headers?${'a'.repeat(kib * 1024)} HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
            assert.equal(r.statuses.length, 1, `${kib} KiB request line: ${JSON.stringify(r.statuses)}`);
            assert.ok([400, 414].includes(r.statuses[0]), `${kib} KiB request line -> ${r.statuses[0]}`);
            assert.equal(r.upstream, 0);
            note(`${kib} KiB request line -> ${r.statuses[0]} (libh2o has no 414), closed ${r.closed}`);
        }
        await assertServing();
    });

    it('oversized headers get 400 or 431 and nothing reaches the upstream', { timeout: T }, async () => {
        const shapes = {
            'one 200 KiB header': `X-Big: ${'b'.repeat(200 * 1024)}\r\n`,
            '50 headers of 1 KiB': Array.from({ length: 50 }, (_, i) => `X-H${i}: ${'v'.repeat(1024)}\r\n`).join(''),
            'a 70 KiB header name': `X-${'n'.repeat(70 * 1024)}: v\r\n`,
        };
        for (const [k, hdrs] of Object.entries(shapes)) {
            const r = await attempt(`GET /debug/headers HTTP/1.1\r\n${H}${hdrs}Connection: close\r\n\r\n`);
            assert.equal(r.statuses.length, 1, `${k}: ${JSON.stringify(r.statuses)}`);
            assert.ok([400, 431].includes(r.statuses[0]), `${k} -> ${r.statuses[0]}`);
            assert.equal(r.upstream, 0);
            note(`${k} -> ${r.statuses[0]}`);
        }
        await assertServing();
    });

    it('absurd numbers of headers get 400 or 431; a sane number passes', { timeout: T }, async () => {
        const many = (n) => Array.from({ length: n }, (_, i) => `X-H${i}: v\r\n`).join('');
        const ok = await attempt(`GET /debug/headers HTTP/1.1\r\n${H}${many(60)}Connection: close\r\n\r\n`);
        assert.deepEqual(ok.statuses, [200], '60 headers must be served');
        for (const n of [101, 1000, 10000]) {
            const r = await attempt(`GET /debug/headers HTTP/1.1\r\n${H}${many(n)}Connection: close\r\n\r\n`);
            assert.equal(r.statuses.length, 1, `${n} headers: ${JSON.stringify(r.statuses)}`);
            assert.ok([400, 431].includes(r.statuses[0]), `${n} headers -> ${r.statuses[0]}`);
            assert.equal(r.upstream, 0);
        }
        // many small repeated headers of one name (what a proxy might merge)
        const r = await attempt(`GET /debug/headers HTTP/1.1\r\n${H}${'Cookie: a=b\r\n'.repeat(500)}Connection: close\r\n\r\n`);
        assert.ok([400, 431].includes(r.statuses[0]), `500 Cookie lines -> ${r.statuses}`);
        note('more than 100 header lines -> 400 (libh2o H2O_MAX_HEADERS)');
        await assertServing();
    });

    it('CR, NUL or other control bytes inside a header value get 400', { timeout: T }, async () => {
        for (const v of ['a\rb', 'a\0b', 'a\r\rb', '\0']) {
            const r = await attempt(`GET /debug/headers HTTP/1.1\r\n${H}X-Evil: ${v}\r\nConnection: close\r\n\r\n`);
            assert.deepEqual(r.statuses, [400], `X-Evil: ${JSON.stringify(v)} -> ${JSON.stringify(r.statuses)}`);
            assert.equal(r.upstream, 0);
        }
        for (const v of ['a\rb', 'a\0b']) {
            const r = await attempt(`GET /debug/headers HTTP/1.1\r\nHost: ott${v}.test\r\nConnection: close\r\n\r\n`);
            assert.deepEqual(r.statuses, [400], `Host: ${JSON.stringify(v)} -> ${JSON.stringify(r.statuses)}`);
        }
        // a bare LF ends the line (RFC 9112 §2.2 allows it): the next line is a header of its own, never part of a value
        const r = await attempt(`GET /debug/headers HTTP/1.1\r\n${H}X-A: a\nX-Injected: 1\r\nConnection: close\r\n\r\n`);
        for (const j of debugBodies(r.raw)) for (const v of headerList(j, 'x-a')) assert.ok(!/[\r\n\0]/.test(v), `control byte reached the upstream: ${JSON.stringify(v)}`);
        await assertServing();
    });

    it('invalid Host: the upstream never sees a Host with spaces, slashes or control bytes', { timeout: T }, async () => {
        for (const host of ['a b', 'evil.test/x', 'user@evil.test', 'a\tb']) {
            const r = await attempt(`GET /debug/headers HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
            const seen = debugBodies(r.raw).map((j) => headerList(j, 'host')[0]);
            note(`Host: ${JSON.stringify(host)} -> ${JSON.stringify(r.statuses)}, upstream saw Host ${JSON.stringify(seen)}`);
        }
        await assertServing();
    });

    // (Two Host lines cannot be told apart here: libh2o keeps the last one before any
    // handler sees the request; the upstream still gets exactly one Host.)
    it('invalid or missing Host on HTTP/1.1 gets 400 (RFC 9112 §3.2)', { timeout: T }, async () => {
        const bad = {
            'space': 'Host: a b\r\n',
            'slash': 'Host: evil.test/x\r\n',
            'userinfo': 'Host: user@evil.test\r\n',
            'no Host': '',
            'empty Host': 'Host: \r\n',
        };
        const got = {};
        for (const [k, h] of Object.entries(bad)) {
            const r = await attempt(`GET /debug/headers HTTP/1.1\r\n${h}Connection: close\r\n\r\n`);
            got[k] = { statuses: r.statuses, upstream: r.upstream };
        }
        note(`invalid Host: ${JSON.stringify(got)}`);
        for (const [k, v] of Object.entries(got)) {
            assert.deepEqual(v.statuses, [400], `${k} -> ${JSON.stringify(v)}`);
            assert.equal(v.upstream, 0, `${k} reached the upstream`);
        }
    });

    it('absolute-form targets never let the client pick another host upstream', { timeout: T }, async () => {
        const r = await attempt(`GET http://evil.test/debug/headers HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
        note(`absolute-form -> ${JSON.stringify(r.statuses)}, upstream paths ${JSON.stringify(r.newPaths)}`);
        for (const j of debugBodies(r.raw)) {
            assert.deepEqual(headerList(j, 'host'), ['ott.test']);
            assert.ok(!headerList(j, 'x-forwarded-host').some((v) => /evil/.test(v)));
        }
        await assertServing();
    });

    it('garbage request lines and methods get 400 and the server keeps serving', { timeout: T }, async () => {
        for (const req of ['GET\r\n\r\n', 'GET / HTTP/9.9\r\nHost: a\r\n\r\n', ' GET / HTTP/1.1\r\nHost: a\r\n\r\n', 'G\0T / HTTP/1.1\r\nHost: a\r\n\r\n',
            'GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n', `${'\r\n'.repeat(1000)}`, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 37) & 0xff))]) {
            const r = await attempt(req, { timeoutMs: 1500 });
            assert.ok(r.statuses.every((s) => s === 400 || s === 505), `${JSON.stringify(String(req).slice(0, 40))} -> ${r.statuses}`);
            assert.equal(r.upstream, 0, `${JSON.stringify(String(req).slice(0, 40))} reached the upstream`);
        }
        await assertServing();
    });
});
