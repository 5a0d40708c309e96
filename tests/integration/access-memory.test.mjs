// access-memory — the client table stays within its bound whatever the number of clients: a
// trusted proxy (127.0.0.1) forwards requests from 1,000,000 distinct client addresses
// (X-Forwarded-For 10.a.b.c, each one new), pipelined over a few kept-alive TLS connections.
// Every request makes a new rate bucket in the table, then gets its 401 from ott-edge itself
// (basic auth, no credentials), so the upstream is not what is measured. Checked: the table
// holds at most its capacity (65536) and evicted the rest, and ott-edge's resident memory
// did not grow between 100,000 and 1,000,000 clients (nor, overall, beyond the table's 3 MiB
// and some slack). Under ASan the RSS figures include the sanitizer's quarantine, so only the
// table's own figures are checked there.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { slow, startEdge, startUpstream, tmpDir } from '../lib/harness.mjs';
import { adminReq, metric, hashFor, rssKiB } from '../lib/access.mjs';

const CLIENTS = Number(process.env.ACCESS_MEMORY_CLIENTS || 1000000);
const CONNS = 4; // kept-alive connections, each pipelining BATCH requests at a time
const BATCH = 500;
const sanitized = process.env.OTT_EDGE_SANITIZE === '1';

/** Sends requests for clients [from, to) on one TLS connection, BATCH at a time, and counts
 *  the 401 answers. */
function drive(port, from, to) {
    return new Promise((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.1', servername: 'localhost', ALPNProtocols: ['http/1.1'], rejectUnauthorized: false });
        let next = from, pending = 0, answered = 0, tail = '';
        const NEEDLE = 'HTTP/1.1 401 ';
        const sendBatch = () => {
            const parts = [];
            for (let i = 0; i < BATCH && next < to; i++, next++, pending++) {
                parts.push(`GET /mem HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: 10.${(next >> 16) & 255}.${(next >> 8) & 255}.${next & 255}\r\n\r\n`);
            }
            s.write(parts.join(''));
        };
        s.once('secureConnect', sendBatch);
        s.setEncoding('latin1');
        s.on('data', (d) => {
            const text = tail + d;
            let i = 0, n = 0;
            while ((i = text.indexOf(NEEDLE, i)) >= 0) {
                n++;
                i += NEEDLE.length;
            }
            if (/HTTP\/1\.1 (?!401)\d{3} /.test(text)) return reject(new Error(`unexpected answer: ${text.slice(0, 300)}`));
            tail = text.slice(-NEEDLE.length + 1);
            answered += n;
            pending -= n;
            if (pending === 0) {
                if (next < to) sendBatch();
                else {
                    s.end();
                    resolve(answered);
                }
            }
        });
        s.on('error', reject);
        s.on('close', () => (next < to || pending > 0) && reject(new Error(`connection closed after ${answered} answers`)));
    });
}

/** Clients [from, to) over CONNS connections in parallel. */
async function clients(port, from, to) {
    const per = Math.ceil((to - from) / CONNS);
    const parts = [];
    for (let c = 0; c < CONNS; c++) {
        const a = from + c * per, b = Math.min(to, a + per);
        if (a < b) parts.push(drive(port, a, b));
    }
    return (await Promise.all(parts)).reduce((x, y) => x + y, 0);
}

describe('the client table under a million clients', () => {
    let up, edge;
    before(async () => {
        up = await startUpstream();
        const dir = tmpDir();
        const file = path.join(dir, 'htpasswd');
        writeFileSync(file, `u:${hashFor('bcrypt', 'p')}\n`);
        edge = await startEdge({
            config: {
                upstream: up.url,
                proxy: { trusted_proxies: ['127.0.0.1/32'] },
                access: { rate: { requests: 1000, per: '1s' } }, // never reached: one request per client
                paths: [{ prefix: '/mem', access: { basic_auth: file } }],
            },
        });
    });
    after(async () => {
        await edge?.stop();
        await up?.stop();
    });

    it(`stays within its bound with ${CLIENTS.toLocaleString('en')} distinct clients`, { timeout: 600000 * slow }, async (t) => {
        const warm = Math.min(100000, CLIENTS / 10);
        const rss0 = rssKiB(edge.pid);
        const t0 = Date.now();
        assert.equal(await clients(edge.httpsPort, 0, warm), warm);
        const rssWarm = rssKiB(edge.pid);
        assert.equal(await clients(edge.httpsPort, warm, CLIENTS), CLIENTS - warm);
        const secs = (Date.now() - t0) / 1000;
        const rssEnd = rssKiB(edge.pid);
        const m = (await adminReq(edge.adminPort, '/metrics')).body;
        const used = metric(m, 'ott_edge_access_clients'), cap = metric(m, 'ott_edge_access_clients_capacity');
        const evictions = metric(m, 'ott_edge_access_evictions_total');
        t.diagnostic(
            `${CLIENTS} clients in ${secs.toFixed(1)} s (${Math.round(CLIENTS / secs)}/s); RSS ${rss0} KiB at start, ${rssWarm} KiB after ` +
                `${warm}, ${rssEnd} KiB after ${CLIENTS}; table ${used}/${cap} entries, ${evictions} evictions`,
        );
        assert.equal(cap, 65536);
        assert.ok(used <= cap && used >= cap * 0.99, `the table is full (a way or two of a set may be left), never more: ${used}`);
        assert.equal(evictions, CLIENTS - used, 'every other client took the place of an older one');
        assert.equal(metric(m, 'ott_edge_access_unauthorized_total', { site: 'default' }), CLIENTS);
        if (!sanitized) {
            assert.ok(rssEnd - rssWarm < 4096, `RSS grew by ${rssEnd - rssWarm} KiB between ${warm} and ${CLIENTS} clients`);
            assert.ok(rssEnd - rss0 < 3 * 1024 + 8192, `RSS grew by ${rssEnd - rss0} KiB in all (the table is 3 MiB)`);
        }
    });
});
