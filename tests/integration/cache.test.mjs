// cache — the in-memory edge cache in front of an OTT-like asset upstream: one upstream fetch
// for many clients (HTTP/1.1 and h2), encoded variants kept apart, what is never stored
// (Set-Cookie, private, no-store, no-cache, no lifetime, errors, Authorization), Vary,
// 304 for conditional requests, Age and expiry, the byte bound under a flood of distinct
// URLs (LRU), max_object, 100 concurrent misses → 1 upstream request, WebSocket bypass,
// metrics, and cache.enabled=false behaving exactly like no cache.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { slow, sleep, startEdge, startUpstream, openWs, h2Connect, adminGet } from '../lib/harness.mjs';
import { startAssets, get1, get2, getUpstream, metric, edgeOffersBrotli } from '../bench/cache/assets.mjs';

const T = 60000 * slow;

async function metrics(edge) {
    return (await adminGet(edge, '/metrics')).body;
}

describe('edge cache', () => {
    let up, edge, h2, br;
    before(async () => {
        up = await startAssets();
        // a long cache.lock_timeout: the coalescing test's upstream takes 1.5 s
        edge = await startEdge({ config: { upstream: up.url, cache: { lock_timeout: '30s' } } });
        h2 = await h2Connect(edge.httpsPort);
        br = await edgeOffersBrotli(edge.httpsPort);
    });
    after(async () => {
        h2?.close();
        await edge?.stop();
        await up?.stop();
    });

    it('a cacheable asset is fetched from the upstream once for many requests (h1 and h2)', { timeout: T }, async () => {
        const orig = await getUpstream(up.url, '/assets/once.js');
        for (let i = 0; i < 10; i++) {
            const r = i % 2 ? await get1(edge.httpsPort, '/assets/once.js') : await get2(h2, '/assets/once.js');
            assert.equal(r.status, 200);
            assert.ok(r.body.equals(orig.body), `request ${i}: body differs`);
            assert.equal(r.headers.etag, orig.headers.etag);
            assert.equal(r.headers['cache-control'], 'public, max-age=31536000, immutable');
            if (i > 0) assert.match(String(r.headers.age), /^\d+$/, `request ${i} has no Age`);
        }
        assert.equal(await up.count('/assets/once.js'), 2, 'one fetch by the edge (plus ours)');
    });

    it('keeps encoded variants apart: br, gzip and identity clients each get theirs from one fetch each', { timeout: T }, async () => {
        const orig = await getUpstream(up.url, '/assets/variants.js');
        for (let round = 0; round < 3; round++) {
            for (const [ae, ce] of [['gzip, deflate, br', br ? 'br' : 'gzip'], ['gzip', 'gzip'], ['', undefined]]) {
                const r = await get2(h2, '/assets/variants.js', { headers: ae ? { 'accept-encoding': ae } : {} });
                assert.equal(r.headers['content-encoding'], ce, `${ae} round ${round}`);
                const body = ce === 'br' ? zlib.brotliDecompressSync(r.body) : ce === 'gzip' ? zlib.gunzipSync(r.body) : r.body;
                assert.ok(body.equals(orig.body), `${ae} round ${round}`);
                assert.match(r.headers.vary, /accept-encoding/);
            }
        }
        assert.equal(await up.count('/assets/variants.js'), 1 + (br ? 3 : 2));
    });

    it('never stores Set-Cookie, private, no-store, no-cache or lifetime-less responses, errors, or Authorization requests', { timeout: T }, async () => {
        for (const p of ['/cookie', '/private', '/nostore', '/nocache', '/plain', '/nothing-here']) {
            for (let i = 0; i < 3; i++) await get1(edge.httpsPort, p);
            assert.equal(await up.count(p), 3, p);
        }
        const c = await get1(edge.httpsPort, '/cookie');
        assert.match(String(c.headers['set-cookie']), /^session=4;/, 'each client gets its own cookie');
        assert.equal(c.headers.age, undefined);
        for (let i = 0; i < 3; i++) await get1(edge.httpsPort, '/assets/authz.js', { headers: { authorization: 'Bearer x' } });
        assert.equal(await up.count('/assets/authz.js'), 3, 'requests with Authorization bypass the cache');
        await get1(edge.httpsPort, '/assets/authz.js');
        await get1(edge.httpsPort, '/assets/authz.js');
        assert.equal(await up.count('/assets/authz.js'), 4, 'but the same URL without it is cached');
    });

    it('respects Vary: each X-Variant value is its own entry', { timeout: T }, async () => {
        const seen = [];
        for (const v of ['a', 'b', 'a', 'b', 'c', 'a']) {
            const r = await get1(edge.httpsPort, '/vary', { headers: { 'x-variant': v } });
            assert.match(r.body.toString(), new RegExp(`^variant=${v} `), `asked ${v}, got ${r.body}`);
            seen.push(r.body.toString());
        }
        assert.equal(await up.count('/vary'), 3, seen.join(''));
        const none = await get1(edge.httpsPort, '/vary');
        assert.match(none.body.toString(), /^variant=none /);
        assert.equal(await up.count('/vary'), 4);
    });

    it('answers conditional requests on hits with 304 (If-None-Match, If-Modified-Since), h1 and h2', { timeout: T }, async () => {
        const first = await get1(edge.httpsPort, '/assets/cond.js', { headers: { 'accept-encoding': 'gzip' } });
        assert.equal(first.status, 200);
        const etag = first.headers.etag;
        assert.match(etag, /^W\/"/);
        const lm = first.headers['last-modified'];
        const reqs = [
            { 'accept-encoding': 'gzip', 'if-none-match': etag },
            { 'accept-encoding': 'gzip', 'if-none-match': `"other", ${etag.slice(2)}` },
            { 'accept-encoding': 'gzip', 'if-modified-since': lm },
            { 'if-none-match': '*' },
        ];
        for (const headers of reqs) {
            for (const get of [(p, o) => get1(edge.httpsPort, p, o), (p, o) => get2(h2, p, o)]) {
                const r = await get('/assets/cond.js', { headers });
                assert.equal(Number(r.status), 304, JSON.stringify(headers));
                assert.equal(r.body.length, 0);
                assert.equal(r.headers.etag !== undefined, true);
                assert.equal(r.headers['content-encoding'], undefined);
            }
        }
        const miss = await get1(edge.httpsPort, '/assets/cond.js', { headers: { 'accept-encoding': 'gzip', 'if-none-match': '"nope"' } });
        assert.equal(miss.status, 200);
        const old = await get1(edge.httpsPort, '/assets/cond.js', { headers: { 'accept-encoding': 'gzip', 'if-modified-since': 'Mon, 01 Jan 2001 00:00:00 GMT' } });
        assert.equal(old.status, 200);
        assert.equal(await up.count('/assets/cond.js'), 2, 'gzip and identity (If-None-Match: *) fetched once each');
    });

    it('a conditional miss fetches the whole response to store it and still answers 304', { timeout: T }, async () => {
        const orig = await getUpstream(up.url, '/assets/cond2.js');
        const a = await get1(edge.httpsPort, '/assets/cond2.js', { headers: { 'if-none-match': orig.headers.etag } });
        assert.equal(a.status, 304);
        assert.equal(a.body.length, 0);
        assert.equal(a.headers.etag, orig.headers.etag);
        assert.equal(a.headers['content-length'], undefined);
        const b = await get2(h2, '/assets/cond2.js', { headers: { 'accept-encoding': 'gzip', 'if-modified-since': orig.headers['last-modified'] } });
        assert.equal(Number(b.status), 304);
        assert.equal(b.headers['content-encoding'], undefined);
        const c = await get1(edge.httpsPort, '/assets/cond2.js');
        assert.ok(c.body.equals(orig.body));
        const d = await get2(h2, '/assets/cond2.js', { headers: { 'accept-encoding': 'gzip' } });
        assert.ok(zlib.gunzipSync(d.body).equals(orig.body));
        assert.equal(await up.count('/assets/cond2.js'), 1 + 2, 'one full fetch per coding');
    });

    it('honours freshness: max-age expiry, the upstream Age, and Expires', { timeout: T }, async () => {
        const a = await get1(edge.httpsPort, '/ttl/short?s=1');
        const b = await get1(edge.httpsPort, '/ttl/short?s=1');
        assert.equal(a.body.toString(), b.body.toString());
        await sleep(1300);
        const c = await get1(edge.httpsPort, '/ttl/short?s=1');
        assert.notEqual(c.body.toString(), a.body.toString(), 'a stale entry is fetched again');
        assert.equal(await up.count('/ttl/short'), 2);

        await get1(edge.httpsPort, '/aged');
        const aged = await get1(edge.httpsPort, '/aged');
        assert.ok(Number(aged.headers.age) >= 40, `Age ${aged.headers.age} keeps the upstream's 40`);
        await get1(edge.httpsPort, '/expires');
        await get1(edge.httpsPort, '/expires');
        assert.equal(await up.count('/expires'), 1, 'Expires alone makes it cacheable');
    });

    it('stores a chunked (length-less) response and serves HEAD from it', { timeout: T }, async () => {
        const orig = await getUpstream(up.url, '/chunked');
        const a = await get1(edge.httpsPort, '/chunked');
        const b = await get2(h2, '/chunked');
        assert.ok(a.body.equals(orig.body) && b.body.equals(orig.body));
        assert.equal(b.headers['content-length'], String(orig.body.length));
        const h = await get1(edge.httpsPort, '/chunked', { method: 'HEAD' });
        assert.equal(h.status, 200);
        assert.equal(h.body.length, 0);
        assert.equal(h.headers['content-length'], String(orig.body.length));
        assert.equal(await up.count('/chunked'), 2);
    });

    it('100 concurrent misses for one URL cause one upstream request (HTTP/1.1 connections and h2 streams)', { timeout: T }, async () => {
        const before = metric(await metrics(edge), 'ott_edge_cache_coalesced_total');
        const p = `/slowasset?ms=${1500 * slow}`;
        const s2 = await h2Connect(edge.httpsPort);
        try {
            const all = [];
            for (let i = 0; i < 100; i++) all.push(i % 2 ? get1(edge.httpsPort, p, { timeoutMs: 30000 }) : get2(s2, p, { timeoutMs: 30000 }));
            const rs = await Promise.all(all);
            assert.ok(rs.every((r) => Number(r.status) === 200 && r.body.length === rs[0].body.length && r.body.length > 0));
        } finally {
            s2.close();
        }
        assert.equal(await up.count('/slowasset'), 1, 'exactly one upstream request');
        const coalesced = metric(await metrics(edge), 'ott_edge_cache_coalesced_total') - before;
        assert.ok(coalesced >= 50, `only ${coalesced} requests waited for the leader`);
    });

    it('waiters survive a leader that goes away, and leaving waiters do no harm (h2 resets)', { timeout: T }, async () => {
        const s2 = await h2Connect(edge.httpsPort);
        try {
            const cancel = (p, ms) =>
                new Promise((resolve) => {
                    const req = s2.request({ ':path': p });
                    req.on('error', () => {});
                    req.on('close', resolve);
                    setTimeout(() => req.close(0x8), ms); // RST_STREAM CANCEL
                });
            // a waiter leaves while the leader is still fetching
            const c0 = await up.count('/slowasset');
            const p1 = `/slowasset?ms=${800 * slow}&case=waiter-leaves`;
            const lead1 = get1(edge.httpsPort, p1);
            await sleep(100);
            const gone = [cancel(p1, 150 * slow), cancel(p1, 200 * slow)];
            const stay = Array.from({ length: 5 }, () => get2(s2, p1));
            await Promise.all(gone);
            const rs1 = await Promise.all([lead1, ...stay]);
            assert.ok(rs1.every((r) => Number(r.status) === 200 && r.body.length > 0));
            assert.equal(await up.count('/slowasset'), c0 + 1, 'one fetch, shared by those who stayed');
            // the leader leaves: the waiters are released and fetch it themselves
            const p2 = `/slowasset?ms=${800 * slow}&case=leader-leaves`;
            const leader = cancel(p2, 200 * slow);
            await sleep(50);
            const waiters = Array.from({ length: 5 }, () => get1(edge.httpsPort, p2, { timeoutMs: 20000 }));
            await leader;
            const rs2 = await Promise.all(waiters);
            assert.ok(rs2.every((r) => r.status === 200 && r.body.length > 0));
            // the abandoned fetch, then one of the waiters leads and the others wait for it
            assert.equal(await up.count('/slowasset'), c0 + 1 + 2);
        } finally {
            s2.close();
        }
        const after = await get1(edge.httpsPort, '/assets/once.js');
        assert.equal(after.status, 200);
    });

    it('a WebSocket upgrade is never cached', { timeout: T }, async () => {
        const ott = await startUpstream({ env: { OTT_UPSTREAM_PING_MS: '0' } });
        const e2 = await startEdge({ config: { upstream: ott.url } });
        try {
            for (let i = 0; i < 2; i++) {
                const c = await openWs(`wss://127.0.0.1:${e2.httpsPort}/api/room/cache${i}`);
                try {
                    assert.deepEqual(await c.nextJson(), { type: 'hello', room: `cache${i}` });
                    c.send('ping?');
                    assert.equal(await c.next(), 'ping?');
                } finally {
                    c.close();
                }
            }
        } finally {
            await e2.stop();
            await ott.stop();
        }
    });

    it('reports hits, misses, stored bytes and evictions in /metrics', { timeout: T }, async () => {
        const m = await metrics(edge);
        assert.ok(metric(m, 'ott_edge_cache_hits_total') > 100, m);
        assert.ok(metric(m, 'ott_edge_cache_misses_total') > 10, m);
        assert.ok(metric(m, 'ott_edge_cache_stored_bytes') > 200 * 1024, m);
        assert.equal(metric(m, 'ott_edge_cache_evictions_total'), 0, m);
    });
});

describe('edge cache bounds', () => {
    let up, edge;
    before(async () => {
        up = await startAssets();
        edge = await startEdge({ config: { upstream: up.url, cache: { max_size: '1MiB', max_object: '128KiB' } } });
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    it('stays within cache.max_size under a flood of distinct URLs, evicting the least recently used', { timeout: T }, async () => {
        const N = 300; // 300 x 16 KiB = 4.7 MiB through a 1 MiB cache
        for (let i = 0; i < N; i += 10) {
            await Promise.all(Array.from({ length: 10 }, (_, j) => get1(edge.httpsPort, `/flood/${i + j}?kb=16`)));
            if (i % 50 === 0) await get1(edge.httpsPort, '/flood/keep?kb=16'); // kept recently used
            const bytes = metric(await metrics(edge), 'ott_edge_cache_stored_bytes');
            assert.ok(bytes <= 1024 * 1024, `stored ${bytes} bytes after ${i + 10} URLs`);
        }
        const m = await metrics(edge);
        assert.ok(metric(m, 'ott_edge_cache_evictions_total') >= N - 64, m);
        assert.ok(metric(m, 'ott_edge_cache_stored_bytes') > 512 * 1024, 'the cache is used, not emptied');
        await get1(edge.httpsPort, `/flood/${N - 1}?kb=16`);
        assert.equal(await up.count(`/flood/${N - 1}`), 1, 'the newest entry is still there');
        await get1(edge.httpsPort, '/flood/0?kb=16');
        assert.equal(await up.count('/flood/0'), 2, 'the oldest entry was evicted');
    });

    it('does not store bodies above cache.max_object (and still serves them whole)', { timeout: T }, async () => {
        for (let i = 0; i < 3; i++) {
            const r = await get1(edge.httpsPort, '/flood/large?kb=200');
            assert.equal(r.body.length, 200 * 1024);
        }
        assert.equal(await up.count('/flood/large'), 3);
    });
});

describe('cache.enabled=false', () => {
    let up, edge;
    before(async () => {
        up = await startAssets();
        edge = await startEdge({ config: { upstream: up.url, cache: { enabled: false } } });
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    it('behaves exactly like no cache: every request reaches the upstream, no Age, no cache metrics', { timeout: T }, async () => {
        const orig = await getUpstream(up.url, '/assets/off.js');
        for (let i = 0; i < 5; i++) {
            const r = await get1(edge.httpsPort, '/assets/off.js');
            assert.ok(r.body.equals(orig.body));
            assert.equal(r.headers.age, undefined);
        }
        const nm = await get1(edge.httpsPort, '/assets/off.js', { headers: { 'if-none-match': orig.headers.etag } });
        assert.equal(nm.status, 304, 'the upstream answers conditionals itself');
        assert.equal(await up.count('/assets/off.js'), 1 + 6);
        const all = [];
        for (let i = 0; i < 20; i++) all.push(get1(edge.httpsPort, '/slowasset?ms=200'));
        await Promise.all(all);
        assert.equal(await up.count('/slowasset'), 20, 'no coalescing either');
        assert.doesNotMatch(await metrics(edge), /ott_edge_cache_/);
    });
});
