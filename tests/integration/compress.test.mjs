// compress — responses compressed by ott-edge from Accept-Encoding: brotli or gzip bodies that
// decode byte-identical to the upstream's, q-values, Vary, the weak ETag of an encoded variant,
// nothing for small/binary/already-encoded bodies or HEAD, HTTP/1.1 and HTTP/2 alike, and a
// WebSocket through an edge that compresses.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { slow, startEdge, startUpstream, openWs, h2Connect, adminGet } from '../lib/harness.mjs';
import { startAssets, get1, get2, getUpstream, metric, edgeOffersBrotli } from '../bench/cache/assets.mjs';

const T = 30000 * slow;

function decode(r) {
    const ce = r.headers['content-encoding'];
    if (ce === 'gzip') return zlib.gunzipSync(r.body);
    if (ce === 'br') return zlib.brotliDecompressSync(r.body);
    assert.equal(ce, undefined, `unexpected content-encoding ${ce}`);
    return r.body;
}

describe('compression', () => {
    let up, edge, h2, br;
    before(async () => {
        up = await startAssets();
        // cache off: every answer here is compressed on the fly, not replayed
        edge = await startEdge({ config: { upstream: up.url, cache: { enabled: false } } });
        h2 = await h2Connect(edge.httpsPort);
        br = await edgeOffersBrotli(edge.httpsPort);
    });
    after(async () => {
        h2?.close();
        await edge?.stop();
        await up?.stop();
    });

    it('a JS asset comes back gzip-encoded and decodes byte-identical (HTTP/1.1 and h2)', { timeout: T }, async () => {
        const orig = await getUpstream(up.url, '/assets/app.js');
        for (const get of [(p, o) => get1(edge.httpsPort, p, o), (p, o) => get2(h2, p, o)]) {
            const r = await get('/assets/app.js', { headers: { 'accept-encoding': 'gzip' } });
            assert.equal(r.status, 200);
            assert.equal(r.headers['content-encoding'], 'gzip');
            assert.match(r.headers.vary, /accept-encoding/i);
            assert.ok(r.body.length < orig.body.length / 2, `${r.body.length} vs ${orig.body.length}`);
            assert.ok(decode(r).equals(orig.body), 'decoded body differs');
            // the upstream's strong ETag names the identity bytes: the encoded variant gets the weak form
            assert.equal(r.headers.etag, `W/${orig.headers.etag}`);
            assert.equal(r.headers['accept-ranges'], undefined);
        }
    });

    it('brotli is preferred when both are accepted, and decodes byte-identical', { timeout: T }, async (t) => {
        if (!br) return t.skip('built without libbrotlienc');
        const orig = await getUpstream(up.url, '/assets/app.js');
        const r = await get2(h2, '/assets/app.js', { headers: { 'accept-encoding': 'gzip, deflate, br' } });
        assert.equal(r.headers['content-encoding'], 'br');
        assert.ok(decode(r).equals(orig.body));
        const g = await get2(h2, '/assets/app.js', { headers: { 'accept-encoding': 'gzip' } });
        assert.ok(r.body.length < g.body.length, `br ${r.body.length} >= gzip ${g.body.length}`);
    });

    it('q-values decide; q=0 refuses; identity only gets the plain body with Vary', { timeout: T }, async () => {
        const cases = [
            ['gzip;q=1.0, br;q=0.5', 'gzip'],
            ['br;q=0, gzip', 'gzip'],
            ['*', br ? 'br' : 'gzip'],
            ['*;q=0.1, gzip;q=0.5', 'gzip'],
            ['gzip;q=0, br;q=0', undefined],
            ['identity', undefined],
            ['deflate', undefined],
        ];
        for (const [ae, want] of cases) {
            const r = await get2(h2, '/assets/app.js', { headers: { 'accept-encoding': ae } });
            assert.equal(r.headers['content-encoding'], want, ae);
            assert.match(r.headers.vary, /accept-encoding/i, ae);
        }
        const none = await get2(h2, '/assets/app.js');
        assert.equal(none.headers['content-encoding'], undefined);
        assert.equal(none.headers['content-length'], String(none.body.length));
    });

    it('small and binary bodies are not compressed (and carry no Vary from us)', { timeout: T }, async () => {
        for (const p of ['/small.js', '/img.png']) {
            const orig = await getUpstream(up.url, p);
            const r = await get1(edge.httpsPort, p, { headers: { 'accept-encoding': 'gzip, br' } });
            assert.equal(r.status, 200);
            assert.equal(r.headers['content-encoding'], undefined, p);
            assert.equal(r.headers.vary, undefined, p);
            assert.ok(r.body.equals(orig.body), p);
            assert.equal(r.headers.etag, orig.headers.etag, p);
        }
    });

    it('an upstream-encoded body is passed as is (no double encoding)', { timeout: T }, async () => {
        const orig = await getUpstream(up.url, '/gz/app.js');
        for (const ae of ['gzip, br', 'br']) {
            const r = await get1(edge.httpsPort, '/gz/app.js', { headers: { 'accept-encoding': ae } });
            assert.equal(r.headers['content-encoding'], 'gzip');
            assert.ok(r.body.equals(orig.body), 'bytes changed');
            assert.ok(zlib.gunzipSync(r.body).length > r.body.length);
        }
    });

    it('HEAD gets no body; responses that are not 200 are left alone', { timeout: T }, async () => {
        const h = await get1(edge.httpsPort, '/assets/app.js', { method: 'HEAD', headers: { 'accept-encoding': 'gzip' } });
        assert.equal(h.status, 200);
        assert.equal(h.body.length, 0);
        const nf = await get1(edge.httpsPort, '/nothing-here', { headers: { 'accept-encoding': 'gzip' } });
        assert.equal(nf.status, 404);
        assert.equal(nf.headers['content-encoding'], undefined);
        const c = await get1(edge.httpsPort, '/assets/app.js', { headers: { 'accept-encoding': 'gzip', 'if-none-match': '"nope"' } });
        assert.equal(c.headers['content-encoding'], 'gzip');
        const orig = await getUpstream(up.url, '/assets/app.js');
        const nm = await get1(edge.httpsPort, '/assets/app.js', { headers: { 'accept-encoding': 'gzip', 'if-none-match': `W/${orig.headers.etag}` } });
        assert.equal(nm.status, 304, 'the weak ETag we hand out validates at the upstream');
        assert.equal(nm.body.length, 0);
    });

    it('counts encoded responses in /metrics', { timeout: T }, async () => {
        const m = (await adminGet(edge, '/metrics')).body;
        assert.ok(metric(m, 'ott_edge_compressed_responses_total{encoding="gzip"}') >= 2, m);
        if (br) assert.ok(metric(m, 'ott_edge_compressed_responses_total{encoding="br"}') >= 1, m);
        assert.equal(metric(m, 'ott_edge_cache_hits_total'), undefined, 'cache.enabled=false registers no cache');
    });
});

describe('compression and WebSocket', () => {
    let up, edge;
    before(async () => {
        up = await startUpstream({ env: { OTT_UPSTREAM_PING_MS: '0' } });
        edge = await startEdge({ config: { upstream: up.url } });
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    it('a WebSocket upgrade asking for gzip/br passes untouched', { timeout: T }, async () => {
        const c = await openWs(`wss://127.0.0.1:${edge.httpsPort}/api/room/z`, { headers: { 'Accept-Encoding': 'gzip, br' } });
        try {
            assert.deepEqual(await c.nextJson(), { type: 'hello', room: 'z' });
            const big = 'x'.repeat(64 * 1024);
            c.send(big);
            assert.equal(await c.next(10000), big);
        } finally {
            c.close();
        }
    });
});

describe('compression settings', () => {
    let up;
    before(async () => {
        up = await startAssets();
    });
    after(async () => {
        await up?.stop();
    });

    it('compress.enabled=false sends every body as the upstream did', { timeout: T }, async () => {
        const edge = await startEdge({ config: { upstream: up.url, compress: { enabled: false } } });
        try {
            const orig = await getUpstream(up.url, '/assets/app.js');
            const r = await get1(edge.httpsPort, '/assets/app.js', { headers: { 'accept-encoding': 'gzip, br' } });
            assert.equal(r.headers['content-encoding'], undefined);
            assert.equal(r.headers.vary, undefined);
            assert.equal(r.headers.etag, orig.headers.etag);
            assert.ok(r.body.equals(orig.body));
            assert.doesNotMatch((await adminGet(edge, '/metrics')).body, /ott_edge_compressed_responses_total/);
        } finally {
            await edge.stop();
        }
    });

    it('compress.types, compress.min_size and compress.level are honoured', { timeout: T }, async () => {
        const edge = await startEdge({
            config: { upstream: up.url, cache: { enabled: false }, compress: { types: ['text/css'], min_size: '100KiB', level: 1 } },
        });
        try {
            const ae = { 'accept-encoding': 'gzip' };
            const js = await get1(edge.httpsPort, '/assets/app.js', { headers: ae });
            assert.equal(js.headers['content-encoding'], undefined, 'JS is not in compress.types');
            const css = await get1(edge.httpsPort, '/assets/app.css?kb=200', { headers: ae });
            assert.equal(css.headers['content-encoding'], 'gzip');
            const small = await get1(edge.httpsPort, '/assets/small.css?kb=50', { headers: ae });
            assert.equal(small.headers['content-encoding'], undefined, '50 KiB is below compress.min_size');
        } finally {
            await edge.stop();
        }
        const bad = await startEdge({ config: { upstream: up.url, compress: { types: ['javascript'] } }, expectExit: true });
        assert.equal(bad.code, 2);
        assert.match(bad.stderr, /compress\.types/);
    });
});
