// core-forwarded — the trust rules for X-Forwarded-*, Forwarded and X-Real-IP, checked on what
// the upstream actually received (/debug/headers echoes the raw header pairs).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { slow, startUpstream, startEdge, curl, headerValues, headerPairs } from '../lib/harness.mjs';

const T = 30000 * slow;
const HOST = 'ott.example.test';

const SPOOF = [
    'X-Forwarded-For: 1.2.3.4',
    'X-Forwarded-Proto: http',
    'X-Forwarded-Host: evil.example',
    'Forwarded: for=1.2.3.4;proto=http;host=evil.example',
    'X-Real-IP: 1.2.3.4',
];

/** GET /debug/headers through the edge with extra headers; returns the upstream's JSON. */
async function seen(edge, proto, headers, host = HOST) {
    const args = ['-k', proto, '--resolve', `${host}:${edge.httpsPort}:127.0.0.1`];
    for (const h of headers) args.push('-H', h);
    const r = await curl([...args, `https://${host}:${edge.httpsPort}/debug/headers`]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
}

/** The X-Forwarded-For list as Express would read it (several headers joined with ", "). */
function xffList(j) {
    return headerValues(j, 'x-forwarded-for')
        .join(', ')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
}

function noSpoofLeft(j) {
    for (const [k, v] of headerPairs(j)) {
        assert.ok(!/1\.2\.3\.4|evil\.example|9\.9\.9\.9/.test(v), `spoofed value reached the upstream: ${k}: ${v}`);
    }
}

/** X-Forwarded-Host: exactly one value, the request's host (with or without its port). */
function assertXfh(j, edge) {
    const v = headerValues(j, 'x-forwarded-host');
    assert.equal(v.length, 1, `X-Forwarded-Host: ${JSON.stringify(v)}`);
    assert.ok([HOST, `${HOST}:${edge.httpsPort}`].includes(v[0]), `X-Forwarded-Host: ${v[0]}`);
}

const PROTOS = ['--http2', '--http1.1'];

describe('untrusted peer (no proxy.trusted_proxies)', () => {
    let up, edge;
    before(async () => {
        up = await startUpstream();
        edge = await startEdge({ config: { upstream: up.url, proxy: { real_ip_header: 'CF-Connecting-IP' } } });
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    for (const proto of PROTOS) {
        it(`spoofed forwarding headers never reach the upstream (${proto})`, { timeout: T }, async () => {
            const j = await seen(edge, proto, [...SPOOF, 'CF-Connecting-IP: 9.9.9.9']);
            noSpoofLeft(j);
            assert.deepEqual(headerValues(j, 'x-forwarded-for'), ['127.0.0.1']);
            assert.deepEqual(headerValues(j, 'x-forwarded-proto'), ['https']);
            assertXfh(j, edge);
            assert.deepEqual(headerValues(j, 'forwarded'), []);
            for (const v of headerValues(j, 'x-real-ip')) assert.equal(v, '127.0.0.1');
        });

        it(`repeated and odd-cased spoofed headers are all dropped (${proto})`, { timeout: T }, async () => {
            const j = await seen(edge, proto, [
                'X-Forwarded-For: 1.2.3.4',
                'x-forwarded-for: 1.2.3.4, 5.6.7.8',
                'X-FORWARDED-PROTO: http',
                'x-forwarded-host: evil.example',
            ]);
            noSpoofLeft(j);
            assert.deepEqual(xffList(j), ['127.0.0.1']);
            assert.deepEqual(headerValues(j, 'x-forwarded-proto'), ['https']);
            assert.equal(headerValues(j, 'x-forwarded-host').length, 1);
        });

        it(`without any client header the upstream gets exactly one of each (${proto})`, { timeout: T }, async () => {
            const j = await seen(edge, proto, []);
            assert.deepEqual(headerValues(j, 'x-forwarded-for'), ['127.0.0.1']);
            assert.deepEqual(headerValues(j, 'x-forwarded-proto'), ['https']);
            assertXfh(j, edge);
            assert.deepEqual(headerValues(j, 'host'), [`${HOST}:${edge.httpsPort}`], 'Host must be preserved');
        });
    }
});

describe('peer outside proxy.trusted_proxies', () => {
    let up, edge;
    before(async () => {
        up = await startUpstream();
        edge = await startEdge({
            config: { upstream: up.url, proxy: { trusted_proxies: ['10.0.0.0/8', '192.168.0.0/16', 'fd00::/8'], real_ip_header: 'CF-Connecting-IP' } },
        });
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    for (const proto of PROTOS) {
        it(`is not trusted (${proto})`, { timeout: T }, async () => {
            const j = await seen(edge, proto, [...SPOOF, 'CF-Connecting-IP: 9.9.9.9']);
            noSpoofLeft(j);
            assert.deepEqual(headerValues(j, 'x-forwarded-for'), ['127.0.0.1']);
            assert.deepEqual(headerValues(j, 'x-forwarded-proto'), ['https']);
        });
    }
});

describe('trusted peer (proxy.trusted_proxies: [127.0.0.1/32])', () => {
    let up, edge;
    before(async () => {
        up = await startUpstream();
        edge = await startEdge({ config: { upstream: up.url, proxy: { trusted_proxies: ['127.0.0.1/32'] } } });
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    for (const proto of PROTOS) {
        it(`keeps the client's X-Forwarded-For and appends the peer (${proto})`, { timeout: T }, async () => {
            const j = await seen(edge, proto, ['X-Forwarded-For: 1.2.3.4', 'X-Forwarded-Proto: http', 'X-Forwarded-Host: front.example']);
            assert.deepEqual(headerValues(j, 'x-forwarded-for'), ['1.2.3.4, 127.0.0.1']);
            assert.deepEqual(headerValues(j, 'x-forwarded-proto'), ['https'], 'X-Forwarded-Proto is set to one value');
            assert.equal(headerValues(j, 'x-forwarded-host').length, 1, 'X-Forwarded-Host is set to one value');
        });

        it(`several X-Forwarded-For headers keep their order and end with the peer (${proto})`, { timeout: T }, async () => {
            const j = await seen(edge, proto, ['X-Forwarded-For: 1.2.3.4', 'X-Forwarded-For: 5.6.7.8']);
            // Express joins repeated headers with ", " and counts hops from the right.
            assert.deepEqual(xffList(j), ['1.2.3.4', '5.6.7.8', '127.0.0.1']);
        });

        it(`without a client X-Forwarded-For the peer is the only hop (${proto})`, { timeout: T }, async () => {
            const j = await seen(edge, proto, []);
            assert.deepEqual(headerValues(j, 'x-forwarded-for'), ['127.0.0.1']);
        });
    }
});

describe('proxy.real_ip_header from a trusted peer', () => {
    let up, edge;
    before(async () => {
        up = await startUpstream();
        edge = await startEdge({
            config: { upstream: up.url, proxy: { trusted_proxies: ['127.0.0.0/8'], real_ip_header: 'CF-Connecting-IP' } },
        });
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    for (const proto of PROTOS) {
        it(`sends X-Real-IP = the header's value (${proto})`, { timeout: T }, async () => {
            const j = await seen(edge, proto, ['CF-Connecting-IP: 9.9.9.9', 'X-Real-IP: 1.2.3.4']);
            assert.deepEqual(headerValues(j, 'x-real-ip'), ['9.9.9.9']);
            assert.equal(xffList(j).at(-1), '127.0.0.1', 'the peer is still the last X-Forwarded-For hop');
        });
    }
});
